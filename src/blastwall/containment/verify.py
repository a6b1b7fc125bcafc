"""Containment verified by telemetry: after a control is applied, the telemetry it should
stop is watched. What the control should stop and still shows up is a breach: the action
turns `breached`, a critical `containment_breach` signal is raised on the incident with the
spans and the likely cause. Traffic of the system without a breach, once the grace period
has passed, makes it `verified`; no traffic at all leaves it `unverified` (no traffic).

What each control should stop, starting `settle` seconds after it was applied (the time its
guards are given to receive it):

- `revoke_tool`: a call of the tool that ran (an `execute_tool` span without an error);
- `suspend`: any call of the system, or of the agent it names, that ran;
- `manual_fallback`: any call of the system that ran;
- `block_input`: a model call whose input matches a blocked pattern;
- `quarantine_output`: a model call with an output in a conversation of which no output
  was handed over for review since the control was applied (spans without a conversation
  id are not judged);
- `rate_limit`: more model calls in a minute than the limit (with 20% slack for clocks).

`require_approval` (an application may approve through its own approver) and the version
pins (spans carry model names, not the inventory's versions) cannot be seen in telemetry:
they are `unverified`, with that reason.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Principal, Role
from blastwall.containment.models import ContainmentAction, HeldOutput
from blastwall.containment.schemas import ActionState
from blastwall.correlation.models import Candidate
from blastwall.db import utcnow
from blastwall.incidents import service as incidents
from blastwall.inventory.schemas import Control
from blastwall.signals.models import Signal
from blastwall.telemetry.messages import as_text
from blastwall.telemetry.models import Interaction
from blastwall_guard.names import same_name, tool_key

log = logging.getLogger("blastwall.containment.verify")

#: Who writes the verification's timeline entries and signals.
VERIFIER = Principal(name="blastwall:verification", role=Role.admin)
WATCHED = frozenset(
    {
        Control.revoke_tool,
        Control.suspend,
        Control.manual_fallback,
        Control.block_input,
        Control.quarantine_output,
        Control.rate_limit,
    }
)
MODEL_CALLS = ("chat", "text_completion")
#: Spans read per action and round; the rest waits for the next round.
BATCH = 2_000
#: Breaching spans named on the signal.
EVIDENCE_SPANS = 20


@dataclass
class GuardInfo:
    """A guard as the control stream sees it: who, which version and fail mode, when."""

    principal: str
    version: str | None
    fail_mode: str | None
    agent: str | None
    connected_at: datetime
    disconnected_at: datetime | None = None
    revision: int = -1


@dataclass
class Guards:
    """The guards of one system: those connected now and the last ones that left."""

    connected: list[GuardInfo] = field(default_factory=list)
    gone: list[GuardInfo] = field(default_factory=list)


def _ran(row: Interaction) -> bool:
    return row.error_type is None


def _breaches(
    session: Session, action: ContainmentAction, rows: list[Interaction]
) -> list[Interaction]:
    """The rows among `rows` (of the action's system, after it settled) that the action's
    control should have stopped."""
    control, params = action.control, action.params
    if control is Control.revoke_tool:
        key = tool_key(params["tool"])
        return [
            r
            for r in rows
            if r.operation == "execute_tool"
            and r.tool_name
            and tool_key(r.tool_name) == key
            and _ran(r)
        ]
    if control is Control.suspend and params.get("agent"):
        key = tool_key(params["agent"])
        return [r for r in rows if r.agent_name and tool_key(r.agent_name) == key and _ran(r)]
    if control in (Control.suspend, Control.manual_fallback):
        return [r for r in rows if _ran(r)]
    if control is Control.block_input:
        patterns = [re.compile(p) for p in params["patterns"]]
        return [
            r
            for r in rows
            if r.operation in MODEL_CALLS
            and r.input_messages is not None
            and _ran(r)
            and any(p.search(as_text(r.input_messages)) for p in patterns)
        ]
    if control is Control.quarantine_output:
        outputs = [
            r
            for r in rows
            if r.operation in MODEL_CALLS and r.output_messages and r.conversation_id and _ran(r)
        ]
        if not outputs:
            return []
        held = set(
            session.scalars(
                select(HeldOutput.conversation_id).where(
                    HeldOutput.system_id == action.system_id,
                    HeldOutput.held_at >= action.applied_at,
                )
            )
        )
        return [r for r in outputs if r.conversation_id not in held]
    if control is Control.rate_limit:
        limit = int(params["per_minute"])
        calls = [r for r in rows if r.operation in MODEL_CALLS and _ran(r)]
        minutes = Counter(r.start_time.replace(second=0, microsecond=0) for r in calls)
        over = {m for m, n in minutes.items() if n > limit * 1.2 + 1}
        return [r for r in calls if r.start_time.replace(second=0, microsecond=0) in over]
    return []


def likely_causes(
    action: ContainmentAction, breaches: list[Interaction], guards: Guards | None
) -> list[str]:
    """Why the behaviour probably went on, most likely first."""
    causes: list[str] = []
    if action.control in (Control.revoke_tool, Control.require_approval):
        named = action.params.get("tool", "")
        other = sorted({r.tool_name for r in breaches if r.tool_name and r.tool_name != named})
        if other and all(same_name(n, named) for n in other):
            causes.append(
                f"name mismatch: the application calls the tool {', '.join(other)}, the control "
                f"names {named}; a guard older than version 2 compares names literally"
            )
    if guards is None:
        causes.append(
            "the guards of this system cannot be seen from this process (the verification ran "
            "without the server's control stream)"
        )
        return causes
    if not guards.connected:
        open_gone = [g for g in guards.gone if g.fail_mode == "open"]
        if open_gone:
            last = open_gone[-1]
            causes.append(
                f"guard in open fail mode and disconnected (token {last.principal}, since "
                f"{last.disconnected_at.isoformat() if last.disconnected_at else '?'}): it keeps "
                "enforcing the state it had before the control"
            )
        elif guards.gone:
            causes.append(
                "no guard of this system is connected now (the last left at "
                f"{guards.gone[-1].disconnected_at}): the guard is disconnected"
            )
        else:
            causes.append(
                "no guard of this system has connected to the control stream: the guard is "
                "not deployed in the application"
            )
    else:
        old = [g for g in guards.connected if (g.version or "1") < "2"]
        if old:
            causes.append(
                f"guard version: {len(old)} connected guard(s) do not announce version 2 "
                "(canonical tool names, undeclared tools); upgrade blastwall's guard"
            )
        behind = [g for g in guards.connected if g.revision < 0]
        if behind:
            causes.append(f"{len(behind)} connected guard(s) have not received any state yet")
        if not causes:
            causes.append(
                f"{len(guards.connected)} guard(s) are connected and received the control, yet "
                "the behaviour went on: a code path does not go through the guard (a tool not "
                "wrapped with guard.tool, a model call without guard.check_call)"
            )
    return causes


def _span(row: Interaction) -> dict[str, Any]:
    return {
        "interaction_id": row.id,
        "trace_id": row.trace_id,
        "span_id": row.span_id,
        "start_time": row.start_time.isoformat(),
        "operation": row.operation,
        "tool_name": row.tool_name,
        "agent_name": row.agent_name,
        "conversation_id": row.conversation_id,
    }


def _raise_breach(
    session: Session,
    action: ContainmentAction,
    breaches: list[Interaction],
    causes: list[str],
    now: datetime,
) -> Signal:
    incident = incidents.get_incident(session, incident_id=action.incident_id, principal=VERIFIER)
    assert action.applied_at is not None
    first = breaches[0]
    summary = (
        f"Containment breach: {action.describe()} was applied at "
        f"{action.applied_at.isoformat()} under incident {incident.id}, yet "
        f"{len(breaches)} span(s) it should have stopped went on, the first at "
        f"{first.start_time.isoformat()}. Likely cause: {causes[0]}."
    )
    candidate = session.scalar(
        select(Candidate.id).where(Candidate.incident_id == incident.id).order_by(Candidate.id)
    )
    signal = Signal(
        source="blastwall",
        kind="containment_breach",
        system_id=action.system_id,
        system_ref=action.system_id,
        archetype=incident.archetype,
        severity="critical",
        status="firing",
        summary=summary[:4000],
        attributes={
            "incident_id": incident.id,
            "action_id": action.id,
            "control": action.control,
            "params": action.params,
            "applied_at": action.applied_at.isoformat(),
            "likely_causes": causes,
            "spans": [_span(r) for r in breaches[:EVIDENCE_SPANS]],
            "breaching_spans": len(breaches),
        },
        trace_id=first.trace_id,
        conversation_id=first.conversation_id,
        fingerprint=f"containment_breach:{action.id}",
        detector="containment_verification",
        interaction_ids=[r.id for r in breaches[:EVIDENCE_SPANS]],
        starts_at=first.start_time,
        candidate_id=candidate,
        created_by=VERIFIER.name,
        created_at=now,
        updated_at=now,
    )
    session.add(signal)
    session.flush()
    action.verification = "breached"
    action.verified_at = now
    action.breach_signal_id = signal.id
    action.verification_note = f"{len(breaches)} span(s) went on; likely cause: {causes[0]}"
    incidents.record_entry(
        session,
        incident=incident,
        kind="containment_breach",
        actor=VERIFIER,
        text=f"{summary} Signal {signal.id}.",
        data={
            "action_id": action.id,
            "signal_id": signal.id,
            "likely_causes": causes,
            "spans": [_span(r) for r in breaches[:EVIDENCE_SPANS]],
        },
    )
    detail = (
        f"Containment breached: action {action.id}, {action.describe()}; "
        f"{len(breaches)} span(s) went on (signal {signal.id})."
    )
    pipeline.publish(
        session,
        incidents.change_event(
            session, incident, change="containment_breached", actor=VERIFIER, detail=detail, at=now
        ),
    )
    return signal


def _verdict(session: Session, action: ContainmentAction, state: str, note: str) -> None:
    if action.verification == state and action.verification_note == note:
        return
    action.verification = state
    action.verified_at = utcnow()
    action.verification_note = note
    incident = incidents.get_incident(session, incident_id=action.incident_id, principal=VERIFIER)
    word = "Verified" if state == "verified" else "Not verified"
    incidents.record_entry(
        session,
        incident=incident,
        kind=f"containment_{state}",
        actor=VERIFIER,
        text=f"{word}: {action.describe()} ({note}).",
        data={"action_id": action.id, "verification": state},
    )


def verify_action(
    session: Session,
    action: ContainmentAction,
    *,
    now: datetime,
    settle: float,
    guards: Guards | None,
) -> Signal | None:
    """One look at the telemetry of an active action; answers the breach signal it raised."""
    assert action.applied_at is not None
    since = action.applied_at + timedelta(seconds=settle)
    control = action.control
    if control not in WATCHED:
        why = (
            "an approval can be given inside the application"
            if control is Control.require_approval
            else "spans do not carry the inventory's versions"
        )
        _verdict(session, action, "unverified", f"cannot be seen in telemetry: {why}")
        return None
    query = (
        select(Interaction)
        .where(
            Interaction.system_id == action.system_id,
            Interaction.id > (action.watched_to_id or 0),
        )
        .order_by(Interaction.id)
        .limit(BATCH)
    )
    rows = list(session.scalars(query))
    if rows:
        action.watched_to_id = rows[-1].id
    after = [r for r in rows if r.start_time >= since]
    breaches = _breaches(session, action, after)
    if breaches:
        causes = likely_causes(action, breaches, guards)
        return _raise_breach(session, action, breaches, causes, now)
    if now < action.applied_at + timedelta(seconds=action.grace_seconds):
        return None
    if after or action.verification == "verified":
        _verdict(session, action, "verified", "traffic seen, none that the control should stop")
    else:
        _verdict(session, action, "unverified", "no traffic")
    return None


def watched(session: Session) -> list[ContainmentAction]:
    """Active actions whose telemetry is still watched (not breached already)."""
    query = select(ContainmentAction).where(
        ContainmentAction.state == ActionState.active,
        ContainmentAction.applied_at.is_not(None),
    )
    return [
        a
        for a in session.scalars(query.order_by(ContainmentAction.id))
        if a.verification != "breached"
    ]
