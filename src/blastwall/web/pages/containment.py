"""The containment section of the incident page: the controls the incident's systems
offer, each previewed (what it does, to whom, until when, whether a second person must
approve it) before it is applied; the incident's actions with their state, verification,
who and when; a second person's approval or rejection; revert.

Every action calls the flow the API's route calls (`containment.flows`), with the same
input model (`ActionIn`) and the same policy, so the roles, the restricted-incident rule
and the records are the API's; the guards are told as the API tells them."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment import flows, service
from blastwall.containment.api import notify_guards
from blastwall.containment.flows.acting import FINISHED
from blastwall.containment.policy import Policy, load_policy
from blastwall.containment.schemas import (
    Acknowledgement,
    ActionDecision,
    ActionIn,
    ActionState,
    RevertIn,
)
from blastwall.db import utcnow
from blastwall.dependencies import IncidentId, ItemId, SessionDep, SettingsDep, audit_object
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.inventory.schemas import Control
from blastwall.inventory.service import get_system
from blastwall.obligations.service import serious_incident_obligations
from blastwall.settings import Settings
from blastwall.web.deps import ActionDep, UiDep
from blastwall.web.pages.containment_offers import Offer, offers
from blastwall.web.pages.section_back import back
from blastwall.web.render import section

router = APIRouter()

SHOWN = 500
"""The incident's actions shown, at most (oldest first)."""

EXPIRIES: dict[str, tuple[str, timedelta | None]] = {
    "": ("never: until someone reverts it", None),
    "15m": ("after 15 minutes", timedelta(minutes=15)),
    "1h": ("after 1 hour", timedelta(hours=1)),
    "4h": ("after 4 hours", timedelta(hours=4)),
    "24h": ("after 24 hours", timedelta(hours=24)),
    "7d": ("after 7 days", timedelta(days=7)),
}
"""The expiries a person may choose: a control lapses by itself after them."""


def _policy(settings: Settings) -> Policy:
    return load_policy(settings.containment_policy)


def _systems(
    session: Session,
    *,
    incident: Incident,
    system_ids: list[str],
    policy: Policy,
    principal: Principal,
) -> list[dict[str, Any]]:
    """Per system of the incident: the controls in force on it now and, for a person who
    may contain, the offers."""
    may_contain = principal.can(Permission.write_incidents) and incident.status not in FINISHED
    held = bool(serious_incident_obligations(session, incident_id=incident.id))
    found = []
    for system_id in system_ids:
        spec = get_system(session, system_id=system_id).parsed
        state = service.control_state(session, system_id=system_id, reader=principal)
        shown: list[Offer] = []
        if may_contain:
            shown = offers(
                session,
                incident=incident,
                spec=spec,
                policy=policy,
                principal=principal,
                obligation_held=held,
            )
        found.append({"spec": spec, "state": state, "offers": shown})
    return found


@router.get("/incidents/{incident_id}/containment")
def containment_section(
    request: Request, incident_id: IncidentId, session: SessionDep, ui: UiDep, settings: SettingsDep
) -> Response:
    """The section: actions first (what is in force and what waits), then what may be
    applied on each system."""
    principal = ui.principal
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    incident_out = incidents.describe(session, [incident])[0]
    policy = _policy(settings)
    rows, more = service.list_actions(session, incident_id=incident.id, limit=SHOWN)
    return section(
        request,
        "incident/containment.html",
        incident=incident_out,
        actions=[service.action_out(r) for r in rows],
        more_actions=more is not None,
        systems=_systems(
            session,
            incident=incident,
            system_ids=incident_out.systems,
            policy=policy,
            principal=principal,
        ),
        finished=incident.status in FINISHED,
        may_approve=policy.may_approve(principal.role),
        approvers=" or ".join(r.value for r in policy.approvers),
        expiries=[(key, label) for key, (label, _) in EXPIRIES.items()],
    )


def _params(
    *,
    tool: str,
    agent: str,
    every_tool: bool,
    prompt: str,
    model: str,
    version: str,
    patterns: str,
    per_minute: str,
) -> dict[str, Any]:
    """The control's parameters from the form: the fields given (the control's schema in
    `ActionIn`'s flow checks them); patterns one a line."""
    given: dict[str, Any] = {
        "tool": tool,
        "agent": agent,
        "prompt": prompt,
        "model": model,
        "version": version,
        "per_minute": per_minute,
    }
    params = {k: v.strip() for k, v in given.items() if v.strip()}
    if every_tool:
        params["all"] = True
    lines = [line.strip() for line in patterns.splitlines() if line.strip()]
    if lines:
        params["patterns"] = lines
    return params


Text = Annotated[str, Form(max_length=2000)]
"""A text field of a form."""


@router.post("/incidents/{incident_id}/containment/actions")
def apply_control(
    request: Request,
    incident_id: IncidentId,
    act: ActionDep,
    settings: SettingsDep,
    system: Annotated[str, Form(max_length=100)],
    control: Annotated[Control, Form()],
    reason: Text = "",
    expires: Annotated[str, Form(max_length=10)] = "",
    rollback: Annotated[bool, Form()] = False,
    acknowledgement: Annotated[Acknowledgement | None, Form()] = None,
    tool: Text = "",
    agent: Text = "",
    every_tool: Annotated[bool, Form(alias="all")] = False,
    prompt: Text = "",
    model: Text = "",
    version: Text = "",
    patterns: Annotated[str, Form(max_length=30_000)] = "",
    per_minute: Text = "",
) -> Response:
    """Apply a control (or ask for it, where the policy wants a second person): the API's
    `POST /incidents/{id}/actions`."""

    def apply() -> str:
        lapse = EXPIRIES.get(expires, EXPIRIES[""])[1]
        data = ActionIn(
            control=control,
            params=_params(
                tool=tool,
                agent=agent,
                every_tool=every_tool,
                prompt=prompt,
                model=model,
                version=version,
                patterns=patterns,
                per_minute=per_minute,
            ),
            reason=reason,
            expires_at=utcnow() + lapse if lapse else None,
            system=system,
            rollback=rollback,
            acknowledgement=acknowledgement,
        )
        action, _ = flows.request_action(
            act.session,
            incident_id=incident_id,
            data=data,
            actor=act.principal,
            policy=_policy(settings),
            snapshot_interactions=settings.containment_snapshot_interactions,
            grace_seconds=settings.containment_grace_seconds,
        )
        audit_object(request, f"incident:{incident_id}/action:{action.id}")
        if action.state == ActionState.active:
            notify_guards(request, act.session, action)
        return back(request, incident_id=incident_id, section="containment")

    return act.run(apply)


@router.post("/incidents/{incident_id}/containment/actions/{action_id}/approve")
def approve_action(
    request: Request,
    incident_id: IncidentId,
    action_id: ItemId,
    act: ActionDep,
    settings: SettingsDep,
    note: Text = "",
) -> Response:
    """A second person approves a waiting action; it applies at once."""

    def approve() -> str:
        action = flows.approve_action(
            act.session,
            incident_id=incident_id,
            action_id=action_id,
            actor=act.principal,
            policy=_policy(settings),
            snapshot_interactions=settings.containment_snapshot_interactions,
            note=ActionDecision(note=note).note,
        )
        audit_object(request, f"incident:{incident_id}/action:{action.id}")
        notify_guards(request, act.session, action)
        return back(request, incident_id=incident_id, section="containment")

    return act.run(approve)


@router.post("/incidents/{incident_id}/containment/actions/{action_id}/reject")
def reject_action(
    request: Request,
    incident_id: IncidentId,
    action_id: ItemId,
    act: ActionDep,
    settings: SettingsDep,
    note: Text = "",
) -> Response:
    """Refuse a waiting action; nothing changes on the system."""

    def reject() -> str:
        flows.reject_action(
            act.session,
            incident_id=incident_id,
            action_id=action_id,
            actor=act.principal,
            policy=_policy(settings),
            note=ActionDecision(note=note).note,
        )
        audit_object(request, f"incident:{incident_id}/action:{action_id}")
        return back(request, incident_id=incident_id, section="containment")

    return act.run(reject)


@router.post("/incidents/{incident_id}/containment/actions/{action_id}/revert")
def revert_action(
    request: Request,
    incident_id: IncidentId,
    action_id: ItemId,
    act: ActionDep,
    settings: SettingsDep,
    reason: Text = "",
) -> Response:
    """Lift an active control, or withdraw a request that waits: the API's revert."""

    def revert() -> str:
        data = RevertIn(reason=reason)
        action = flows.revert_action(
            act.session,
            incident_id=incident_id,
            action_id=action_id,
            actor=act.principal,
            reason=data.reason,
            snapshot_interactions=settings.containment_snapshot_interactions,
        )
        audit_object(request, f"incident:{incident_id}/action:{action.id}")
        notify_guards(request, act.session, action)
        return back(request, incident_id=incident_id, section="containment")

    return act.run(revert)
