"""The only way into detection storage: canary tokens, and findings stored as signals."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.db import revoke, utcnow
from blastwall.detection.builtin.canary import PREFIX, token_hash
from blastwall.detection.engine import Detection, DetectionEngine, redact_excerpt
from blastwall.detection.models import CanaryToken
from blastwall.errors import NotFound
from blastwall.inventory.models import System
from blastwall.signals.models import Signal
from blastwall.telemetry.models import Interaction

__all__ = [
    "SOURCE",
    "issue_canary",
    "list_canaries",
    "refresh_canaries",
    "revoke_canary",
    "store_detections",
    "store_found",
]

SOURCE = "detector"
MAX_INTERACTIONS = 50
_SEVERITY_ORDER = ["info", "warning", "high", "critical"]


# --- canary tokens ------------------------------------------------------------------------


def issue_canary(
    session: Session, *, system_id: str, note: str | None, actor: Principal
) -> tuple[CanaryToken, str]:
    """A new canary token for a system; the token is answered this once."""
    actor.require(Permission.write_inventory)
    if session.get(System, system_id) is None:
        raise NotFound(f"No AI system '{system_id}'. `blastwall inventory list` shows the ids.")
    token = PREFIX + secrets.token_hex(12)
    row = CanaryToken(
        system_id=system_id,
        token_hash=token_hash(token),
        prefix=token[:8],
        note=note,
        created_by=actor.name,
    )
    session.add(row)
    session.flush()
    return row, token


def list_canaries(
    session: Session, *, principal: Principal, system_id: str | None = None
) -> list[CanaryToken]:
    principal.require(Permission.read)
    query = select(CanaryToken).order_by(CanaryToken.id)
    if system_id:
        query = query.where(CanaryToken.system_id == system_id)
    return list(session.scalars(query))


def revoke_canary(session: Session, *, canary_id: int, actor: Principal) -> CanaryToken:
    """Stop watching for a canary token (e.g. it was published on purpose)."""
    actor.require(Permission.write_inventory)
    return revoke(
        session,
        CanaryToken,
        canary_id,
        missing=f"No canary token {canary_id}. `blastwall canary list` shows them.",
    )


def refresh_canaries(session: Session, engine: DetectionEngine) -> None:
    """Give the engine the live canary hashes when they changed since it last looked."""
    version = tuple(
        session.execute(
            select(
                func.count(CanaryToken.id),
                func.max(CanaryToken.id),
                func.max(CanaryToken.revoked_at),
            )
        ).one()
    )
    if version == engine.canaries.version:
        return
    live = session.execute(
        select(CanaryToken.token_hash, CanaryToken.system_id).where(
            CanaryToken.revoked_at.is_(None)
        )
    )
    engine.canaries.replace({digest: system for digest, system in live}, version)


# --- findings as signals ------------------------------------------------------------------


def _interaction_ids(session: Session, detections: list[Detection]) -> dict[tuple[str, str], int]:
    """The stored interaction of each (trace id, span id) the detections rest on."""
    wanted = {
        (item.trace_id, item.span_id)
        for detection in detections
        for item in detection.items
        if item.trace_id and item.span_id
    }
    found: dict[tuple[str, str], int] = {}
    traces = sorted({trace for trace, _ in wanted})
    for start in range(0, len(traces), 500):
        rows = session.execute(
            select(Interaction.id, Interaction.trace_id, Interaction.span_id).where(
                Interaction.trace_id.in_(traces[start : start + 500])
            )
        )
        for row_id, trace, span in rows:
            key = (trace, span)
            if key in wanted and row_id > found.get(key, 0):
                found[key] = row_id
    return found


def _when(value: float | None, default: datetime) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else default


def _merge(detections: list[Detection]) -> list[list[Detection]]:
    """Detections grouped by fingerprint, in order of first appearance: the same finding
    on many interactions of one batch is one signal that counts them."""
    groups: dict[str, list[Detection]] = {}
    for detection in detections:
        groups.setdefault(detection.fingerprint, []).append(detection)
    return list(groups.values())


def store_found(
    session: Session,
    detections: list[Detection],
    *,
    now: datetime,
    policy: Callable[[str | None], str],
) -> list[Signal]:
    """`store_detections`, less the excerpts of systems whose content policy (`policy`,
    by system id) keeps hashes only."""
    for detected in detections:
        if policy(detected.system_id) == "hashes":
            detected.finding.excerpt = None  # the system's policy keeps no content
    return store_detections(session, detections, now=now)


def store_detections(
    session: Session, detections: Iterable[Detection], *, now: datetime | None = None
) -> list[Signal]:
    """Store the detections as signals; answer them, for correlation. Detections
    with the same fingerprint in one call (one ingest batch) become one signal: the first's
    summary and excerpt, the highest severity and confidence, `attributes.occurrences`
    counting them and `interaction_ids` listing up to 50 of the interactions."""
    detections = list(detections)
    if not detections:
        return []
    now = now or utcnow()
    ids = _interaction_ids(session, detections)
    rows: list[dict[str, Any]] = []
    for group in _merge(detections):
        first = group[0]
        finding = first.finding
        redact_excerpt(finding)  # only the stored one: the others' excerpts are dropped
        items = [item for d in group for item in d.items]
        interaction_ids = list(
            dict.fromkeys(
                ids[(i.trace_id, i.span_id)]
                for i in items
                if i.trace_id and i.span_id and (i.trace_id, i.span_id) in ids
            )
        )[:MAX_INTERACTIONS]
        attributes: dict[str, Any] = dict(finding.attributes)
        if len(group) > 1:
            attributes["occurrences"] = len(group)
            conversations = {i.conversation_id for i in items if i.conversation_id}
            attributes["conversations"] = len(conversations)
        times = [i.time for i in items if i.time is not None]
        severity = max((d.finding.severity for d in group), key=_SEVERITY_ORDER.index)
        rows.append(
            {
                "source": SOURCE,
                "kind": finding.kind,
                "system_id": first.system_id,
                "system_ref": None,
                "archetype": finding.archetype,
                "severity": severity,
                "status": "firing",
                "summary": finding.summary
                + (f" ({len(group)} times in one batch)" if len(group) > 1 else ""),
                "attributes": attributes,
                "trace_id": next((i.trace_id for i in items if i.trace_id), None),
                "conversation_id": next(
                    (i.conversation_id for i in items if i.conversation_id), None
                ),
                "fingerprint": first.fingerprint,
                "reference": None,
                "detector": first.detector,
                "detector_version": first.version,
                "confidence": round(max(float(d.finding.confidence) for d in group), 4),
                "excerpt": finding.excerpt,
                "interaction_ids": interaction_ids or None,
                "owasp": list(finding.owasp) or None,
                "atlas": list(finding.atlas) or None,
                "starts_at": _when(min(times) if times else None, now),
                "ends_at": None,
                "created_by": f"{SOURCE}:{first.detector}",
                "created_at": now,
                "updated_at": now,
            }
        )
    # A batch holds few signals (findings are merged by fingerprint above): ORM rows, so that
    # each can be correlated into its group and candidate in this same transaction.
    signals = [Signal(**row) for row in rows]
    session.add_all(signals)
    return signals
