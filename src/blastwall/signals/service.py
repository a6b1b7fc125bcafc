"""The only way into signal storage: generic signals, people's reports and Alertmanager alerts.

A signal names the AI system it is about. A name that is not in the inventory is not refused:
the signal keeps the name (`system_ref`) without a system (`system_id` is null) and counts as
unregistered — an AI system nobody declared is itself worth an incident (shadow AI).

Nothing is stored twice. A signal or report sent with an `Idempotency-Key` is remembered
with its principal and a hash of its body for `REPLAY_WINDOW`: the same key again answers
the signal it created (`replay`), the same key with another body is refused. An Alertmanager
alert is identified by its fingerprint and start time: a notification sent again changes
nothing, and never touches the signal of another firing of the same alert.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import delete, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, NotFound, Problem
from blastwall.inventory.models import System
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.pipeline import SignalsRaised, SignalsResolved
from blastwall.signals import alertmanager
from blastwall.signals.models import Signal, SignalRequest
from blastwall.signals.schemas import (
    IngestResult,
    ReportCreate,
    ReportOut,
    SignalCreate,
    SignalOut,
    SignalSeverity,
    SignalStatus,
    refuse_nul,
)
from blastwall.telemetry.models import Interaction

REPORT_SOURCE = "report"
REPORT_KIND = "user_report"
REPORT_SUMMARY_LENGTH = 200
REPLAY_WINDOW = timedelta(hours=24)
"""How long a request's `Idempotency-Key` is remembered; later, the key is new again."""
KEY_HEADER = "Idempotency-Key"


class SystemMatcher:
    """Finds the inventory system a name stands for: its id, or one of the service names in
    its `telemetry.service_names`, case-insensitively. Loads the service names once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._service_names: dict[str, str] | None = None
        self._found: dict[str, str | None] = {}

    def _names(self) -> dict[str, str]:
        if self._service_names is None:
            names: dict[str, str] = {}
            for row in self.session.scalars(select(System).order_by(System.id)):
                for name in row.parsed.telemetry.service_names:
                    names.setdefault(name.strip().lower(), row.id)
            self._service_names = names
        return self._service_names

    def __call__(self, name: str) -> str | None:
        key = name.strip().lower()
        if not key:
            return None
        if key not in self._found:
            found = self.session.scalar(select(System.id).where(System.id == key))
            self._found[key] = found if found is not None else self._names().get(key)
        return self._found[key]


def _clip(text: str, length: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


# --- idempotency keys -----------------------------------------------------------------------


@dataclass(frozen=True)
class Idempotency:
    """A request's `Idempotency-Key`: the key, the route it was sent to (`signals`,
    `reports`) and the SHA-256 of its body as validated (so that JSON that differs only in
    spacing or member order is the same body)."""

    key: str
    route: str
    body_sha256: str

    @classmethod
    def of(cls, key: str, *, route: str, body: BaseModel) -> Idempotency:
        canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return cls(key=key, route=route, body_sha256=hashlib.sha256(canonical).hexdigest())


def replay(session: Session, *, idempotency: Idempotency, actor: Principal) -> Signal | None:
    """The signal an earlier request of the same principal with the same key created, within
    `REPLAY_WINDOW`; None when there was none. The same key with another body is refused."""
    actor.require(Permission.ingest if idempotency.route == "signals" else Permission.report)
    cutoff = utcnow() - REPLAY_WINDOW
    earlier = session.scalar(
        select(SignalRequest).where(
            SignalRequest.principal == actor.name,
            SignalRequest.route == idempotency.route,
            SignalRequest.idempotency_key == idempotency.key,
            SignalRequest.created_at >= cutoff,
        )
    )
    if earlier is None:
        return None
    if earlier.body_sha256 != idempotency.body_sha256:
        raise InvalidInput(
            f"This {KEY_HEADER} was sent before with another body. Use a new key for a new "
            "request, or send the same body to get the first request's answer.",
            problems=[Problem(f"header.{KEY_HEADER}", "reused with a different request body")],
        )
    signal = session.get(Signal, earlier.signal_id) if earlier.signal_id is not None else None
    if signal is None:  # pragma: no cover - the row goes with its signal (ON DELETE CASCADE)
        return None
    return signal


def _remember(
    session: Session, idempotency: Idempotency, actor: Principal, now: datetime
) -> SignalRequest:
    """Record the key before the signal it creates. Two requests with the same key at once
    (PostgreSQL; SQLite takes one writer at a time): the second waits for the first to
    commit, then is answered 409 and, sent again, the first one's signal."""
    session.execute(delete(SignalRequest).where(SignalRequest.created_at < now - REPLAY_WINDOW))
    request = SignalRequest(
        principal=actor.name,
        route=idempotency.route,
        idempotency_key=idempotency.key,
        body_sha256=idempotency.body_sha256,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:
        raise Conflict(
            f"A request with this {KEY_HEADER} was being stored at the same time. Send it "
            "again: the answer will be that request's."
        ) from None
    return request


# --- signals and reports ------------------------------------------------------------------


def create_signal(
    session: Session,
    *,
    data: SignalCreate,
    actor: Principal,
    idempotency: Idempotency | None = None,
) -> Signal:
    """Store a signal and correlate it. With `idempotency` the key is remembered with it
    (`replay` answers a request sent before with the same key)."""
    actor.require(Permission.ingest)
    system_id = SystemMatcher(session)(data.system) if data.system else None
    now = utcnow()
    request = _remember(session, idempotency, actor, now) if idempotency else None
    row = Signal(
        source=data.source,
        kind=data.kind,
        system_id=system_id,
        system_ref=data.system,
        archetype=data.archetype,
        severity=data.severity,
        status=SignalStatus.firing,
        summary=data.summary,
        attributes=data.attributes,
        trace_id=data.trace_id,
        conversation_id=data.conversation_id,
        starts_at=data.starts_at or now,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    if request is not None:
        session.flush()
        request.signal_id = row.id
    pipeline.publish(session, SignalsRaised(signals=[row], now=now))
    return row


def _system_of_conversation(session: Session, conversation_id: str) -> str | None:
    """The system a conversation took place in, from its telemetry or earlier signals."""
    for model in (Interaction, Signal):
        found = session.scalar(
            select(model.system_id)
            .where(model.conversation_id == conversation_id, model.system_id.is_not(None))
            .order_by(model.id.desc())
            .limit(1)
        )
        if found is not None:
            return found
    return None


def _system_named_in(session: Session, where: str) -> str | None:
    """The one system whose id or name appears in `where` as whole words; None when none or
    several do."""
    text = where.lower()
    found: set[str] = set()
    for system_id, name in session.execute(select(System.id, System.name)):
        for needle in (system_id, name.strip().lower()):
            if needle and re.search(rf"(?<![\w-]){re.escape(needle)}(?![\w-])", text):
                found.add(system_id)
    return found.pop() if len(found) == 1 else None


def create_report(
    session: Session,
    *,
    data: ReportCreate,
    actor: Principal,
    idempotency: Idempotency | None = None,
) -> Signal:
    """A person's report of a suspicious output, stored as a signal with a reference. With
    `idempotency`, as `create_signal`."""
    actor.require(Permission.report)
    request = _remember(session, idempotency, actor, utcnow()) if idempotency else None
    attributes: dict[str, Any] = {"what": data.what}
    if data.where:
        attributes["where"] = data.where
    if data.contact:
        attributes["contact"] = data.contact
    system_id: str | None = None
    if data.system:
        system_id = SystemMatcher(session)(data.system)
    elif data.conversation_id and (found := _system_of_conversation(session, data.conversation_id)):
        system_id = found
        attributes["system_from"] = "conversation_id"
    elif data.where and (found := _system_named_in(session, data.where)):
        system_id = found
        attributes["system_from"] = "where"
    now = utcnow()
    row = Signal(
        source=REPORT_SOURCE,
        kind=REPORT_KIND,
        system_id=system_id,
        system_ref=data.system,
        severity=SignalSeverity.warning,
        status=SignalStatus.firing,
        summary=_clip(data.what, REPORT_SUMMARY_LENGTH),
        attributes=attributes,
        conversation_id=data.conversation_id,
        starts_at=now,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    row.reference = f"RPT-{row.id:06d}"
    if request is not None:
        request.signal_id = row.id
    pipeline.publish(session, SignalsRaised(signals=[row], now=now))
    return row


def report_answer(row: Signal) -> ReportOut:
    assert row.reference is not None
    return ReportOut(
        reference=row.reference,
        signal_id=row.id,
        message=f"Thank you — your report {row.reference} has reached the incident response "
        "team. Quote this reference if you add anything or are asked about it.",
    )


def _refresh(row: Signal, values: dict[str, Any]) -> bool:
    changed = False
    for field, value in values.items():
        if getattr(row, field) != value:
            setattr(row, field, value)
            changed = True
    return changed


def _lock_fingerprints(session: Session, fingerprints: list[str]) -> None:
    """On PostgreSQL, serialise concurrent notifications about the same alerts until commit
    (SQLite writers are serialised already), so that two deliveries of a new alert do not
    both create a signal. Locks are taken in sorted order: no deadlocks."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for fingerprint in fingerprints:
        digest = hashlib.sha256(f"{alertmanager.SOURCE}:{fingerprint}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def ingest_alertmanager(
    session: Session, *, payload: alertmanager.Payload, actor: Principal
) -> IngestResult:
    """Store the alerts of one Alertmanager notification.

    An alert is identified by its fingerprint and its start time. A firing alert updates the
    signal still firing for its fingerprint; a resolved alert resolves it. An alert that
    starts again after it was resolved is a new signal. A repeat of what is already stored
    (Alertmanager resends alerts with every notification of their group, and a webhook
    delivery may be retried) changes nothing; a late copy about an earlier firing of the
    alert touches only that firing's signal."""
    actor.require(Permission.ingest)
    match = SystemMatcher(session)
    result = IngestResult(created=0, updated=0, unchanged=0, signals=[])
    created: list[Signal] = []
    resolved: list[Signal] = []
    now = utcnow()
    alerts = [alertmanager.to_signal(alert, payload) for alert in payload.alerts]
    _lock_fingerprints(session, sorted({a.fingerprint for a in alerts}))
    for mapped in alerts:
        system_id, system_ref = alertmanager.system_of(mapped.labels, match)
        details: dict[str, Any] = {
            "kind": mapped.kind,
            "severity": mapped.severity.value,
            "summary": mapped.summary,
            "archetype": mapped.archetype,
            "attributes": mapped.attributes,
            "system_id": system_id,
            "system_ref": system_ref,
        }
        same_alert = (Signal.source == alertmanager.SOURCE) & (
            Signal.fingerprint == mapped.fingerprint
        )
        latest = session.scalar(
            select(Signal).where(same_alert).order_by(Signal.id.desc()).limit(1)
        )
        if (
            latest is not None
            and latest.starts_at is not None
            and mapped.starts_at is not None
            and mapped.starts_at < latest.starts_at
        ):
            # A late copy about an earlier firing of the alert: that firing's own signal, if
            # it is stored, never the later one's.
            latest = session.scalar(
                select(Signal)
                .where(same_alert, Signal.starts_at == mapped.starts_at)
                .order_by(Signal.id.desc())
                .limit(1)
            )
        starts_at = mapped.starts_at or now
        if latest is not None and latest.status == SignalStatus.firing:
            missed_resolution = (
                mapped.starts_at is not None
                and latest.starts_at is not None
                and mapped.starts_at > latest.starts_at
                and mapped.status is SignalStatus.firing
            )
            if missed_resolution:
                # It ended and started again while its resolution never reached Blastwall.
                latest.status = SignalStatus.resolved
                latest.ends_at = mapped.starts_at
                latest.attributes = {**latest.attributes, "resolution_missed": True}
                latest.updated_at = now
                resolved.append(latest)
                result.updated += 1
            else:
                if mapped.status is SignalStatus.resolved:
                    details["status"] = SignalStatus.resolved.value
                    details["ends_at"] = mapped.ends_at or now
                    resolved.append(latest)
                if _refresh(latest, details):
                    latest.updated_at = now
                    result.updated += 1
                else:
                    result.unchanged += 1
                result.signals.append(latest.id)
                continue
        elif latest is not None and (
            (
                latest.starts_at is not None
                and mapped.starts_at is not None
                and latest.starts_at == mapped.starts_at
            )
            or (mapped.starts_at is None and mapped.status is SignalStatus.resolved)
        ):
            # This very alert is already resolved here: a repeat, or a late copy (without a
            # start time, a resolution is taken for a repeat of the last one).
            result.unchanged += 1
            result.signals.append(latest.id)
            continue
        row = Signal(
            source=alertmanager.SOURCE,
            status=mapped.status,
            fingerprint=mapped.fingerprint,
            starts_at=starts_at,
            ends_at=(mapped.ends_at or now) if mapped.status is SignalStatus.resolved else None,
            created_by=actor.name,
            created_at=now,
            updated_at=now,
            **details,
        )
        session.add(row)
        session.flush()
        created.append(row)
        if row.status == SignalStatus.resolved:
            resolved.append(row)
        result.created += 1
        result.signals.append(row.id)
    pipeline.publish(session, SignalsRaised(signals=created, now=now))
    pipeline.publish(session, SignalsResolved(signals=resolved, now=now))
    return result


def get_signal(session: Session, *, signal_id: int, principal: Principal) -> Signal:
    principal.require(Permission.read)
    row = session.get(Signal, signal_id)
    if row is None:
        raise NotFound(f"No signal {signal_id}. `blastwall signals list` shows the ids.")
    return row


def list_signals(
    session: Session,
    *,
    principal: Principal,
    limit: int,
    cursor: str | None = None,
    system: str | None = None,
    source: str | None = None,
    detector: str | None = None,
    kind: str | None = None,
    archetype: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    conversation_id: str | None = None,
    trace_id: str | None = None,
    unregistered: bool | None = None,
    held_by: str | None = None,
) -> tuple[list[Signal], str | None]:
    """Signals newest first; `system` matches the inventory id or the name as sent, the time
    range [since, until) applies to when Blastwall received them."""
    principal.require(Permission.read)
    texts = {"system": system, "source": source, "detector": detector, "kind": kind}
    texts |= {"conversation_id": conversation_id, "held_by": held_by}
    refuse_nul("query", texts)
    query = select(Signal).order_by(Signal.id.desc())
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Signal.id < after[0])
    if system:
        query = query.where(or_(Signal.system_id == system, Signal.system_ref == system))
    if source:
        query = query.where(Signal.source == source)
    if detector:
        query = query.where(Signal.detector == detector)
    if kind:
        query = query.where(Signal.kind == kind)
    if archetype:
        query = query.where(Signal.archetype == archetype)
    if severity:
        query = query.where(Signal.severity == severity)
    if status:
        query = query.where(Signal.status == status)
    if since:
        query = query.where(Signal.created_at >= since)
    if until:
        query = query.where(Signal.created_at < until)
    if conversation_id:
        query = query.where(Signal.conversation_id == conversation_id)
    if trace_id:
        query = query.where(Signal.trace_id == trace_id.lower())
    if unregistered is True:
        query = query.where(Signal.system_id.is_(None), Signal.system_ref.is_not(None))
    elif unregistered is False:
        query = query.where(or_(Signal.system_id.is_not(None), Signal.system_ref.is_(None)))
    if held_by:
        query = query.where(Signal.held_by == held_by)
    return fetch_page(session, query, limit=limit)


def to_out(row: Signal) -> SignalOut:
    return SignalOut.model_validate(
        {
            **{
                c: getattr(row, c)
                for c in (
                    "id",
                    "source",
                    "kind",
                    "system_id",
                    "system_ref",
                    "archetype",
                    "severity",
                    "status",
                    "summary",
                    "attributes",
                    "trace_id",
                    "conversation_id",
                    "fingerprint",
                    "reference",
                    "detector",
                    "detector_version",
                    "confidence",
                    "excerpt",
                    "interaction_ids",
                    "owasp",
                    "atlas",
                    "starts_at",
                    "ends_at",
                    "group_id",
                    "candidate_id",
                    "held_by",
                    "linked_by",
                    "created_by",
                    "created_at",
                    "updated_at",
                )
            },
            "unregistered": row.system_id is None and row.system_ref is not None,
        }
    )
