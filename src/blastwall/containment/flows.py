"""Containment across domains: the incident, the inventory, the policy, the evidence
snapshot, the timeline and the connectors.

The order of every change is fixed: the current control state and the system's recent
interactions are preserved first (a snapshot recorded on the incident), then the state
changes and the connectors act, then the timeline says what was done; one transaction
holds all of it, so nothing changes without its record.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Permission, Principal, Role
from blastwall.containment import service
from blastwall.containment.approvals import expire_approvals
from blastwall.containment.models import ContainmentAction
from blastwall.containment.policy import Policy
from blastwall.containment.schemas import PARAMS, ActionIn, ActionState, UndeclaredIn
from blastwall.correlation.models import Candidate
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, PermissionDenied, PluginError, Problem
from blastwall.errors import field_path as _path
from blastwall.incidents import flows as incident_flows
from blastwall.incidents import service as incidents
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.models import Incident
from blastwall.incidents.schemas import Archetype
from blastwall.inventory import versions
from blastwall.inventory.schemas import Control, SystemSpec
from blastwall.inventory.service import get_system
from blastwall.pipeline import SignalsRaised
from blastwall.plugins import containment_connectors
from blastwall.signals.models import Signal
from blastwall_guard.names import same_name, tool_key

log = logging.getLogger("blastwall.containment")

#: Who lifts an expired control.
EXPIRY = Principal(name="blastwall:expiry", role=Role.admin)
FINISHED = (Status.closed, Status.merged, Status.declined)
PURPOSES = {"apply": "applying", "revert": "reverting", "expiry": "the expiry of"}


def _named(
    field: str, value: str | None, kind: str, declared: list[str], system_id: str
) -> tuple[str | None, list[Problem]]:
    """The declared name that `value` names (canonically: `issue_refund` is `issue-refund`),
    the only one when `value` is None, or the problem."""
    if value is None:
        if len(declared) == 1:
            return declared[0], []
        return None, [
            Problem(
                f"body.params.{field}",
                f"the system declares {len(declared)} {kind}s; name one of: "
                f"{', '.join(declared) or '(none)'}",
            )
        ]
    for name in declared:
        if same_name(name, value):
            return name, []
    return None, [
        Problem(
            f"body.params.{field}",
            f"'{value}' is not a {kind} of {system_id} in the inventory; "
            f"declared: {', '.join(declared) or '(none)'}",
        )
    ]


def _first_signal_at(session: Session, incident: Incident) -> datetime:
    first = session.scalar(
        select(func.min(Candidate.first_signal_at)).where(Candidate.incident_id == incident.id)
    )
    return min(first, incident.detected_at) if first is not None else incident.detected_at


def _version(
    session: Session,
    spec: SystemSpec,
    incident: Incident,
    params: dict[str, Any],
    *,
    kind: str,
    rollback: bool,
) -> tuple[str, list[Problem]]:
    """Fill in the pinned version (and a prompt's content hash) from the versions the
    component has had; a roll-back takes the one current before the incident's first
    signal. Answers a sentence for the timeline, or the problems."""
    declared = [c.id for c in versions.declared(spec, kind)]
    component, problems = _named(kind, params.get(kind), kind, declared, spec.id)
    if component is None:
        return "", problems
    params[kind] = component
    known = versions.known(session, spec=spec, kind=kind, component_id=component)
    listed = ", ".join(v.version for v in known) or "(none)"
    if rollback:
        if params.get("version") is not None:
            return "", [Problem("body.params.version", "give a version or rollback, not both")]
        anchor = _first_signal_at(session, incident)
        at_anchor = versions.current_at(known, anchor)
        now = versions.current_at(known, utcnow()) or (known[-1] if known else None)
        chosen: versions.Version | None = at_anchor
        undo = at_anchor is not None and now is not None and at_anchor.version == now.version
        if at_anchor is not None and undo:
            # The version in force when the incident began is still in force: roll back to
            # the one before it (the change that preceded the incident is what is undone).
            began = at_anchor.since or anchor
            older = [
                v
                for v in known
                if v.since is not None and v.since < began and v.version != at_anchor.version
            ]
            chosen = older[-1] if older else None
        if chosen is None:
            return "", [
                Problem(
                    "body.rollback",
                    f"{kind} '{component}' has no recorded version to roll back to from the "
                    f"one in force when the incident began ({anchor.isoformat()}); known: "
                    f"{listed}. There is nothing to roll back to: pin a version by name.",
                )
            ]
        when = (
            "before the change that preceded the incident's first signal"
            if undo
            else "at the incident's first signal"
        )
        said = (
            f"rolled back from {now.version if now else '?'} to {chosen.version}, in force "
            f"{when} ({anchor.isoformat()})"
        )
    else:
        chosen = next((v for v in known if v.version == params.get("version")), None)
        if chosen is None:
            return "", [
                Problem(
                    "body.params.version",
                    f"{spec.id} never had version '{params.get('version')}' of {kind} "
                    f"'{component}'; known versions: {listed}. Record a {kind}_change with "
                    "its version first, or pin a known one.",
                )
            ]
        said = f"pinned version {chosen.version}"
    assert chosen is not None
    params["version"] = chosen.version
    if kind == "prompt":
        given = params.get("content_hash")
        if given is not None and chosen.content_hash is not None and given != chosen.content_hash:
            return "", [
                Problem(
                    "body.params.content_hash",
                    f"version {chosen.version} has content hash {chosen.content_hash}",
                )
            ]
        if chosen.content_hash is not None:
            params["content_hash"] = chosen.content_hash
            said += f" (content {chosen.content_hash})"
    return f"{kind} '{component}' {said}", []


def _target(
    session: Session,
    spec: SystemSpec,
    incident: Incident,
    control: Control,
    params: dict[str, Any],
    *,
    rollback: bool,
) -> tuple[str, list[Problem]]:
    """Fill `params` with the inventory's own names for the things they name (tools, agents,
    prompts, models, versions); answers a note for the timeline, or the problems."""
    if rollback and control not in (Control.pin_prompt_version, Control.pin_model_version):
        return "", [
            Problem("body.rollback", "only pin_prompt_version and pin_model_version roll back")
        ]
    if control is Control.pin_prompt_version:
        return _version(session, spec, incident, params, kind="prompt", rollback=rollback)
    if control is Control.pin_model_version:
        return _version(session, spec, incident, params, kind="model", rollback=rollback)
    problems: list[Problem] = []
    if control in (Control.revoke_tool, Control.require_approval) and params.get("tool"):
        tools = [t.name for t in spec.components.tools]
        name, problems = _named("tool", params["tool"], "tool", tools, spec.id)
        params["tool"] = name
    elif control is Control.suspend and params.get("agent"):
        agents = [a.name for a in spec.agents]
        name, problems = _named("agent", params["agent"], "agent", agents, spec.id)
        params["agent"] = name
    return "", problems


def _system_of(session: Session, incident: Incident, requested: str | None) -> str:
    systems = incidents.systems_of(session, incident_ids=[incident.id]).get(incident.id, [])
    if requested:
        if requested not in systems:
            raise InvalidInput(
                f"Incident {incident.id} does not involve '{requested}'.",
                [
                    Problem(
                        "body.system",
                        f"name one of: {', '.join(systems) or '(none)'}; "
                        "add a system to the incident with PATCH first",
                    )
                ],
            )
        return requested
    if len(systems) != 1:
        raise InvalidInput(
            f"Incident {incident.id} involves {len(systems)} AI systems; say which to contain.",
            [Problem("body.system", f"name one of: {', '.join(systems) or '(none)'}")],
        )
    return systems[0]


def _connectors(
    action: ContainmentAction, *, revert_reason: str | None = None
) -> list[dict[str, str]]:
    record = service.action_record(action)
    verb = "lift" if revert_reason is not None else "apply"
    results = []
    for connector in containment_connectors():
        if not connector.supports(action.control):
            continue
        try:
            if revert_reason is None:
                line = connector.apply(record)
            else:
                line = connector.revert(record, reason=revert_reason)
        except Exception as exc:
            raise PluginError(
                f"The containment connector '{connector.name}' failed to {verb} "
                f"{action.control} on {action.system_id}: {exc!r}. Nothing was changed; fix "
                "or remove the connector's plugin, then retry."
            ) from exc
        results.append({"connector": connector.name, "result": str(line)})
    return results


def _preserve(
    session: Session,
    incident: Incident,
    action: ContainmentAction,
    *,
    purpose: str,
    actor: Principal,
    interactions: int,
) -> int:
    snapshot = service.take_snapshot(
        session, action=action, purpose=purpose, taken_by=actor.name, interactions=interactions
    )
    count = len(snapshot.content["recent_interactions"])
    incidents.record_entry(
        session,
        incident=incident,
        kind="evidence_snapshot",
        actor=actor,
        text=f"Evidence preserved before {PURPOSES[purpose]} {action.describe()}: "
        f"control state and {count} recent interaction(s), sha256 {snapshot.sha256[:16]}…",
        data={
            "snapshot_id": snapshot.id,
            "sha256": snapshot.sha256,
            "action_id": action.id,
            "system_id": action.system_id,
            "interactions": count,
        },
    )
    return snapshot.id


def _apply(
    session: Session,
    incident: Incident,
    action: ContainmentAction,
    *,
    actor: Principal,
    interactions: int,
    note: str = "",
) -> None:
    snapshot_id = _preserve(
        session, incident, action, purpose="apply", actor=actor, interactions=interactions
    )
    action.state = ActionState.active
    action.applied_at = utcnow()
    action.snapshot_id = snapshot_id
    action.verification = "pending"
    if actor.name != action.requested_by:
        action.approved_by = actor.name
    revision = service.bump_revision(session, system_id=action.system_id)
    results = _connectors(action)
    approved = f", approved by {actor.name}" if action.approved_by else ""
    until = f" until {action.expires_at.isoformat()}" if action.expires_at else ""
    incidents.record_entry(
        session,
        incident=incident,
        kind="containment_applied",
        actor=actor,
        text=f"Applied {action.describe()}{until}{approved}: {action.reason}"
        + (f" ({note})" if note else ""),
        data={
            "action_id": action.id,
            "system_id": action.system_id,
            "control": action.control,
            "params": action.params,
            "requested_by": action.requested_by,
            "approved_by": action.approved_by,
            "expires_at": action.expires_at.isoformat() if action.expires_at else None,
            "revision": revision,
            "snapshot_id": snapshot_id,
            "connectors": results,
        },
    )
    incident_flows.containment_changed(session, incident=incident, action=action, actor=actor)


def request_action(
    session: Session,
    *,
    incident_id: int,
    data: ActionIn,
    actor: Principal,
    policy: Policy,
    snapshot_interactions: int,
    grace_seconds: int = 30,
) -> tuple[ContainmentAction, str]:
    """Apply a control now when the policy pre-authorises it for the actor, or record it as
    waiting for approval. Answers the action and a sentence saying which."""
    actor.require(Permission.write_incidents)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    if incident.status in FINISHED:
        raise Conflict(
            f"Incident {incident.id} is {incident.status}; containment acts under an active "
            "incident. Reopen it or open a new one."
        )
    system_id = _system_of(session, incident, data.system)
    spec = get_system(session, system_id=system_id).parsed
    if data.control not in spec.controls:
        raise Conflict(
            f"{system_id} does not declare the control '{data.control.value}' in the "
            f"inventory (it declares: {', '.join(spec.controls) or 'none'}). "
            "Add it under `controls` in the system's YAML and apply the inventory first."
        )
    try:
        params = PARAMS[data.control].model_validate(data.params)
    except ValidationError as exc:
        raise InvalidInput(
            f"The parameters do not fit the control '{data.control.value}'.",
            [Problem(_path(("body", "params", *e["loc"])), e["msg"]) for e in exc.errors()],
        ) from None
    clean = params.model_dump(exclude_none=True, exclude_defaults=False)
    if (
        data.control in (Control.pin_prompt_version, Control.pin_model_version)
        and not data.rollback
        and "version" not in clean
    ):
        raise InvalidInput(
            "Say which version to pin.",
            [Problem("body.params.version", "give a version, or set rollback: true")],
        )
    note, problems = _target(session, spec, incident, data.control, clean, rollback=data.rollback)
    if problems:
        raise InvalidInput("The parameters name things the inventory does not declare.", problems)
    now = utcnow()
    if data.expires_at is not None:
        if data.expires_at.tzinfo is None:
            raise InvalidInput(
                "expires_at needs a timezone.",
                [Problem("body.expires_at", "add one, e.g. 2026-12-01T10:00:00Z")],
            )
        if data.expires_at <= now:
            raise InvalidInput(
                "expires_at is in the past.",
                [Problem("body.expires_at", f"give a time after now ({now.isoformat()})")],
            )
    action = ContainmentAction(
        incident_id=incident.id,
        system_id=system_id,
        control=data.control,
        params=clean,
        reason=data.reason,
        state=ActionState.pending_approval,
        requested_by=actor.name,
        requested_role=actor.role,
        requested_at=now,
        expires_at=data.expires_at.astimezone(UTC) if data.expires_at else None,
        grace_seconds=data.grace_seconds or grace_seconds,
    )
    session.add(action)
    session.flush()
    severity = incident.severity
    if policy.preauthorised_for(actor.role, data.control, severity):
        _apply(
            session, incident, action, actor=actor, interactions=snapshot_interactions, note=note
        )
        message = (
            f"Applied {action.describe()}. Its guards enforce it as soon as the new state "
            "reaches them."
        )
    else:
        approvers = " or ".join(r.value for r in policy.approvers)
        message = (
            f"Waiting for approval: the containment policy does not pre-authorise "
            f"'{action.control}' for the role {actor.role.value} at {severity.value}. A "
            f"{approvers} other than {actor.name} approves it with POST /api/v1/incidents/"
            f"{incident.id}/actions/{action.id}/approve (CLI: blastwall containment approve "
            f"{incident.id} {action.id})."
        )
        incidents.record_entry(
            session,
            incident=incident,
            kind="containment_requested",
            actor=actor,
            text=f"Requested {action.describe()}, waiting for approval: {action.reason}",
            data={
                "action_id": action.id,
                "control": action.control,
                "params": action.params,
                "system_id": system_id,
                "approvers": [r.value for r in policy.approvers],
            },
        )
    session.flush()
    return action, message


def _pending(
    session: Session, *, incident_id: int, action_id: int, actor: Principal, policy: Policy
) -> tuple[Incident, ContainmentAction]:
    """The incident and its action waiting for approval, if `actor` may decide on it."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    action = service.get_action(session, incident_id=incident.id, action_id=action_id)
    if not policy.may_approve(actor.role):
        raise PermissionDenied(
            f"The role '{actor.role.value}' may not approve containment actions. Use a token "
            f"with one of these roles: {', '.join(r.value for r in policy.approvers)}."
        )
    if action.state != ActionState.pending_approval:
        raise Conflict(f"Action {action.id} is {action.state}, not waiting for approval.")
    return incident, action


def _end(action: ContainmentAction, state: ActionState, actor: Principal, reason: str) -> None:
    action.state = state
    action.ended_by = actor.name
    action.ended_at = utcnow()
    action.end_reason = reason or None


def approve_action(
    session: Session,
    *,
    incident_id: int,
    action_id: int,
    actor: Principal,
    policy: Policy,
    snapshot_interactions: int,
    note: str = "",
) -> ContainmentAction:
    """A second person approves a waiting action; it is applied at once."""
    incident, action = _pending(
        session, incident_id=incident_id, action_id=action_id, actor=actor, policy=policy
    )
    if actor.name == action.requested_by:
        raise Conflict(f"{actor.name} asked for action {action.id}; a second person approves it.")
    if incident.status in FINISHED:
        raise Conflict(f"Incident {incident.id} is {incident.status}; reject the action instead.")
    _apply(session, incident, action, actor=actor, interactions=snapshot_interactions)
    if note:
        incidents.record_entry(
            session,
            incident=incident,
            kind="note",
            actor=actor,
            text=f"Approval of action {action.id}: {note}",
        )
    session.flush()
    return action


def reject_action(
    session: Session,
    *,
    incident_id: int,
    action_id: int,
    actor: Principal,
    policy: Policy,
    note: str = "",
) -> ContainmentAction:
    incident, action = _pending(
        session, incident_id=incident_id, action_id=action_id, actor=actor, policy=policy
    )
    _end(action, ActionState.rejected, actor, note)
    incidents.record_entry(
        session,
        incident=incident,
        kind="containment_rejected",
        actor=actor,
        text=f"Rejected {action.describe()}" + (f": {note}" if note else ""),
        data={"action_id": action.id},
    )
    session.flush()
    return action


def _lift(
    session: Session,
    incident: Incident,
    action: ContainmentAction,
    *,
    actor: Principal,
    state: ActionState,
    reason: str,
    interactions: int,
) -> None:
    purpose = "revert" if state is ActionState.reverted else "expiry"
    _preserve(session, incident, action, purpose=purpose, actor=actor, interactions=interactions)
    _end(action, state, actor, reason)
    revision = service.bump_revision(session, system_id=action.system_id)
    results = _connectors(action, revert_reason=reason)
    verb = "Reverted" if state is ActionState.reverted else "Lapsed at its expiry:"
    incidents.record_entry(
        session,
        incident=incident,
        kind=f"containment_{state.value}",
        actor=actor,
        text=f"{verb} {action.describe()}: {reason}",
        data={
            "action_id": action.id,
            "system_id": action.system_id,
            "control": action.control,
            "revision": revision,
            "connectors": results,
        },
    )
    incident_flows.containment_changed(session, incident=incident, action=action, actor=actor)


def revert_action(
    session: Session,
    *,
    incident_id: int,
    action_id: int,
    actor: Principal,
    reason: str,
    snapshot_interactions: int,
) -> ContainmentAction:
    """Lift an active control (or withdraw one still waiting for approval)."""
    actor.require(Permission.write_incidents)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    action = service.get_action(session, incident_id=incident.id, action_id=action_id)
    if action.state == ActionState.pending_approval:
        _end(action, ActionState.reverted, actor, reason)
        incidents.record_entry(
            session,
            incident=incident,
            kind="containment_withdrawn",
            actor=actor,
            text=f"Withdrew the request for {action.describe()}: {reason}",
            data={"action_id": action.id},
        )
    elif action.state == ActionState.active:
        _lift(
            session,
            incident,
            action,
            actor=actor,
            state=ActionState.reverted,
            reason=reason,
            interactions=snapshot_interactions,
        )
    else:
        raise Conflict(f"Action {action.id} is {action.state} already; nothing to revert.")
    session.flush()
    return action


def expire_action(
    session: Session, *, action_id: int, now: datetime, snapshot_interactions: int
) -> ContainmentAction | None:
    """Lift one active control whose expiry has come (None: it is not due, or not active,
    any more). The caller gives each its own transaction: a connector that fails raises
    PluginError, and that action is tried again on the next round."""
    action = session.get(ContainmentAction, action_id)
    if action is None or action.state != ActionState.active or action.expires_at is None:
        return None
    if action.expires_at > now:
        return None
    incident = incidents.get_incident(session, incident_id=action.incident_id, principal=EXPIRY)
    _lift(
        session,
        incident,
        action,
        actor=EXPIRY,
        state=ActionState.expired,
        reason=f"expired at {action.expires_at.isoformat()}",
        interactions=snapshot_interactions,
    )
    return action


def expire_undecided(session: Session, *, now: datetime) -> None:
    """Mark the tool-call approvals nobody decided in time expired."""
    expire_approvals(session, actor=EXPIRY, now=now)


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
