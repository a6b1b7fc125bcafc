"""What guards report: a tool or agent their system does not declare."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Principal
from blastwall.containment.schemas import UndeclaredIn
from blastwall.db import utcnow
from blastwall.incidents.schemas import Archetype
from blastwall.inventory.service import get_system
from blastwall.pipeline import SignalsRaised
from blastwall.signals.models import Signal
from blastwall_guard.names import tool_key


def report_undeclared(
    session: Session, *, data: UndeclaredIn, actor: Principal
) -> tuple[Signal, bool]:
    """A guard met a tool or agent its system does not declare: a warning signal of kind
    `undeclared_tool` / `undeclared_agent` (shadow capability), once per system and name.
    Answers the signal and whether it is new."""
    system = get_system(session, system_id=data.system)
    fingerprint = f"undeclared:{system.id}:{data.kind}:{tool_key(data.name)}"
    found = session.scalar(
        select(Signal).where(Signal.source == "blastwall-guard", Signal.fingerprint == fingerprint)
    )
    if found is not None:
        return found, False
    spec = system.parsed
    declared = (
        [t.name for t in spec.components.tools]
        if data.kind == "tool"
        else [a.name for a in spec.agents]
    )
    where = f" (agent {data.agent})" if data.agent and data.kind == "tool" else ""
    now = utcnow()
    row = Signal(
        source="blastwall-guard",
        kind=f"undeclared_{data.kind}",
        system_id=system.id,
        system_ref=system.id,
        archetype=Archetype.unauthorised_use,
        severity="warning",
        status="firing",
        summary=(
            f"The application of {system.id} uses the {data.kind} '{data.name}'{where}, which the "
            f"inventory does not declare (declared: {', '.join(declared) or 'none'}). Declare it "
            "with its permissions, or find out why it is there; a guard failing closed denies "
            "it while a control is in force."
        ),
        attributes={"kind": data.kind, "name": data.name, "agent": data.agent},
        fingerprint=fingerprint,
        detector="guard",
        starts_at=now,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    pipeline.publish(session, SignalsRaised(signals=[row], now=now))
    return row, True
