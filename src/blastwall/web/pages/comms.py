"""The incident page's Communications section: status updates per audience (drafts, those
awaiting approval, published ones), a new draft filled from the incident, editing, the
audience's preview beside the responders', publishing and approval, and the update
cadence's countdown.

Every read and action goes through the same flows as the API (`comms.flows.updates`,
`comms.flows.cadence`): who may draft, publish or approve, and what a restricted incident
may not tell a public audience, are decided there."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.comms.audiences import AudiencePolicy, current_audiences
from blastwall.comms.flows import cadence as cadence_flows
from blastwall.comms.flows import updates as flows
from blastwall.comms.models.updates import ComponentStatus, Impact, Phase, UpdateState
from blastwall.comms.service.updates import items, to_out
from blastwall.comms.update_schemas import SECTIONS, DraftIn, NoChangeIn, SnoozeIn, UpdateEdit
from blastwall.db import utcnow
from blastwall.dependencies import IncidentId, ItemId, SessionDep, SettingsDep, audit_object
from blastwall.incidents import service as incidents
from blastwall.incidents.schemas import IncidentOut, Visibility
from blastwall.web.deps import ActionDep, UiDep
from blastwall.web.forms import optional_utc_time
from blastwall.web.pages.section_back import back
from blastwall.web.render import section

router = APIRouter()
SECTION = "comms"
Text = Annotated[str, Form(max_length=200_000)]


def _incident(session: Session, incident_id: int, principal: Principal) -> IncidentOut:
    """The incident as its page shows it; NotFound for a restricted one the person does not
    take part in."""
    row = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    return incidents.describe(session, [row])[0]


def _audiences(
    session: Session,
    incident: IncidentOut,
    principal: Principal,
    policy: AudiencePolicy,
    preview: int | None,
) -> list[dict[str, Any]]:
    """Each audience with its updates (oldest first), and what the person may do there."""
    rows = flows.list_updates(session, incident_id=incident.id, principal=principal)
    restricted = incident.visibility == Visibility.restricted
    found = []
    for name, declared in policy.audiences.items():
        closed = declared.public and restricted
        updates = [to_out(r) for r in rows if r.audience == name]
        found.append(
            {
                "name": name,
                "declared": declared,
                "updates": updates,
                "closed": closed,
                "may_draft": principal.can(Permission.write_timeline) and not closed,
                "may_publish": flows.may_publish(
                    session,
                    incident_id=incident.id,
                    audience=name,
                    actor=principal,
                    policy=policy,
                ),
                "published": any(u.state == UpdateState.published for u in updates),
                "preview": _preview(session, incident, principal, policy, preview, updates),
            }
        )
    return found


def _preview(
    session: Session,
    incident: IncidentOut,
    principal: Principal,
    policy: AudiencePolicy,
    wanted: int | None,
    updates: list[Any],
) -> Any:
    if wanted is None or not any(u.id == wanted for u in updates):
        return None
    return flows.preview_update(
        session, incident_id=incident.id, update_id=wanted, principal=principal, policy=policy
    )


def _cadence(
    session: Session, incident_id: int, principal: Principal, policy: AudiencePolicy
) -> dict[str, Any]:
    now = utcnow()
    due = cadence_flows.schedule(
        session, incident_id=incident_id, principal=principal, policy=policy, now=now
    )
    return {"cadence": due, "now": now}


@router.get("/incidents/{incident_id}/comms")
def comms_section(
    request: Request,
    incident_id: IncidentId,
    session: SessionDep,
    ui: UiDep,
    settings: SettingsDep,
    preview: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    """The Communications section; `preview` shows that update as its audience will read
    it, beside the responders' rendering, with what blocks publishing."""
    incident = _incident(session, incident_id, ui.principal)
    policy = current_audiences(settings.audience_policy)
    return section(
        request,
        "incident/comms.html",
        incident=incident,
        audiences=_audiences(session, incident, ui.principal, policy, preview),
        sections=SECTIONS,
        phases=[p.value for p in Phase],
        impacts=[i.value for i in Impact],
        component_statuses=[c.value for c in ComponentStatus],
        **_cadence(session, incident.id, ui.principal, policy),
    )


@router.get("/incidents/{incident_id}/comms/cadence")
def comms_cadence(
    request: Request, incident_id: IncidentId, session: SessionDep, ui: UiDep, settings: SettingsDep
) -> Response:
    """The cadence's countdown alone, which the section refreshes every 30 seconds."""
    incident = _incident(session, incident_id, ui.principal)
    policy = current_audiences(settings.audience_policy)
    return section(
        request,
        "incident/comms_cadence.html",
        incident=incident,
        **_cadence(session, incident.id, ui.principal, policy),
    )


@router.post("/incidents/{incident_id}/comms/drafts")
def new_draft(
    request: Request,
    incident_id: IncidentId,
    act: ActionDep,
    settings: SettingsDep,
    audience: Annotated[str, Form(max_length=40)],
) -> Response:
    """A draft to the audience, filled from the incident as the API's draft is."""

    def draft() -> str:
        body = DraftIn(audience=audience)
        update = flows.draft_update(
            act.session,
            incident_id=incident_id,
            audience=body.audience,
            actor=act.principal,
            policy=current_audiences(settings.audience_policy),
        )
        audit_object(request, f"incident:{incident_id}/update:{update.id}")
        return back(
            request, incident_id=incident_id, section=SECTION, anchor=f"#update-{update.id}"
        )

    return act.run(draft)


@router.post("/incidents/{incident_id}/comms/updates/{update_id}/edit")
def edit_update(
    request: Request,
    incident_id: IncidentId,
    update_id: ItemId,
    act: ActionDep,
    title: Annotated[str, Form(max_length=300)],
    what_happened: Text = "",
    what_we_are_testing: Text = "",
    what_we_are_doing: Text = "",
    what_we_dont_know: Text = "",
    next_update_at: Annotated[str, Form(max_length=40)] = "",
    phase: Annotated[Phase, Form()] = Phase.investigating,
    impact: Annotated[Impact, Form()] = Impact.none,
    component_status: Annotated[ComponentStatus, Form()] = ComponentStatus.operational,
) -> Response:
    """Save the draft as the form has it: every section is replaced, one item a line."""

    def edit() -> str:
        body = UpdateEdit(
            title=title,
            what_happened=items(what_happened),
            what_we_are_testing=items(what_we_are_testing),
            what_we_are_doing=items(what_we_are_doing),
            what_we_dont_know=items(what_we_dont_know),
            next_update_at=optional_utc_time(
                next_update_at, field="next_update_at", what="The next update time"
            ),
            phase=phase,
            impact=impact,
            component_status=component_status,
        )
        flows.edit_update(
            act.session,
            incident_id=incident_id,
            update_id=update_id,
            edit=body,
            actor=act.principal,
        )
        audit_object(request, f"incident:{incident_id}/update:{update_id}")
        return back(
            request, incident_id=incident_id, section=SECTION, anchor=f"#update-{update_id}"
        )

    return act.run(edit)


@router.post("/incidents/{incident_id}/comms/updates/{update_id}/publish")
def publish_update(
    request: Request,
    incident_id: IncidentId,
    update_id: ItemId,
    act: ActionDep,
    settings: SettingsDep,
) -> Response:
    """Publish the update, or, to an audience that needs approval, submit it for a second
    person's; the problems that block it come back as a 422 listing each."""

    def publish() -> str:
        flows.publish_update(
            act.session,
            incident_id=incident_id,
            update_id=update_id,
            actor=act.principal,
            policy=current_audiences(settings.audience_policy),
        )
        audit_object(request, f"incident:{incident_id}/update:{update_id}")
        return back(
            request, incident_id=incident_id, section=SECTION, anchor=f"#update-{update_id}"
        )

    return act.run(publish)


@router.post("/incidents/{incident_id}/comms/updates/{update_id}/approve")
def approve_update(
    request: Request,
    incident_id: IncidentId,
    update_id: ItemId,
    act: ActionDep,
    settings: SettingsDep,
) -> Response:
    """Approve an update awaiting approval, which publishes it; its author and whoever
    submitted it are refused (403, with the reason)."""

    def approve() -> str:
        flows.approve_update(
            act.session,
            incident_id=incident_id,
            update_id=update_id,
            actor=act.principal,
            policy=current_audiences(settings.audience_policy),
        )
        audit_object(request, f"incident:{incident_id}/update:{update_id}")
        return back(
            request, incident_id=incident_id, section=SECTION, anchor=f"#update-{update_id}"
        )

    return act.run(approve)


@router.post("/incidents/{incident_id}/comms/no-change")
def no_change(
    request: Request,
    incident_id: IncidentId,
    act: ActionDep,
    settings: SettingsDep,
    audience: Annotated[str, Form(max_length=40)],
) -> Response:
    """Publish the audience's last update again with a new next update time (now plus the
    cadence): nothing changed, and the cadence is kept."""

    def repeat() -> str:
        body = NoChangeIn(audience=audience)
        update = flows.no_change_update(
            act.session,
            incident_id=incident_id,
            audience=body.audience,
            actor=act.principal,
            policy=current_audiences(settings.audience_policy),
        )
        audit_object(request, f"incident:{incident_id}/update:{update.id}")
        return back(
            request, incident_id=incident_id, section=SECTION, anchor=f"#update-{update.id}"
        )

    return act.run(repeat)


@router.post("/incidents/{incident_id}/comms/snooze")
def snooze_cadence(
    request: Request,
    incident_id: IncidentId,
    act: ActionDep,
    settings: SettingsDep,
    audience: Annotated[str, Form(max_length=40)],
    until: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Hold the reminders for updates to one audience until a time, with the reason on the
    timeline."""

    def snooze() -> str:
        # blank: none, which the schema refuses
        moment = optional_utc_time(until, field="until", what="The end of the snooze")
        body = SnoozeIn.model_validate({"audience": audience, "until": moment, "reason": reason})
        cadence_flows.snooze(
            act.session,
            incident_id=incident_id,
            body=body,
            actor=act.principal,
            policy=current_audiences(settings.audience_policy),
        )
        audit_object(request, f"incident:{incident_id}/cadence:{audience}")
        return back(request, incident_id=incident_id, section=SECTION, anchor="#comms-cadence")

    return act.run(snooze)
