"""People's reports of a suspicious output, stored as signals with a reference; the system
they are about is found from what they say when they do not name it."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.inventory.models import System
from blastwall.pipeline import SignalsRaised
from blastwall.signals.models import Signal
from blastwall.signals.schemas import ReportCreate, ReportOut, SignalSeverity, SignalStatus
from blastwall.signals.service.requests import Idempotency, remember
from blastwall.signals.service.systems import SystemMatcher
from blastwall.telemetry.models import Interaction

REPORT_SOURCE = "report"
REPORT_KIND = "user_report"
REPORT_SUMMARY_LENGTH = 200


def _clip(text: str, length: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


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
    request = remember(session, idempotency, actor, utcnow()) if idempotency else None
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
