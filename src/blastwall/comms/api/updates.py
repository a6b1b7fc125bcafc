"""Status update routes: drafts, edits, previews, approval, publishing, "no change" updates,
and snoozing a cadence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from blastwall.comms.audiences import AudiencePolicy, current_audiences
from blastwall.comms.flows import cadence as cadence_flows
from blastwall.comms.flows import updates as flows
from blastwall.comms.models.updates import UpdateState
from blastwall.comms.service.updates import to_out
from blastwall.comms.update_schemas import (
    DraftIn,
    NoChangeIn,
    PreviewOut,
    SnoozeIn,
    SnoozeOut,
    UpdateEdit,
    UpdateOut,
)
from blastwall.dependencies import (
    IncidentId,
    ItemId,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    audit_object,
)
from blastwall.pagination import Page
from blastwall.settings import Settings

__all__ = ["router"]

router = APIRouter(prefix="/incidents", tags=["status updates"])


def _policy(settings: Settings) -> AudiencePolicy:
    return current_audiences(settings.audience_policy)


@router.post("/{incident_id}/updates/drafts", response_model=UpdateOut, status_code=201)
def draft_update(
    request: Request,
    incident_id: IncidentId,
    body: DraftIn,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> UpdateOut:
    """A draft to the audience, filled from the incident: confirmed facts and impact, open
    hypotheses, containment and open tasks, the next update after the cadence. 409 for a
    public audience of a restricted incident."""
    update = flows.draft_update(
        session,
        incident_id=incident_id,
        audience=body.audience,
        actor=principal,
        policy=_policy(settings),
    )
    audit_object(request, f"incident:{incident_id}/update:{update.id}")
    return to_out(update)


@router.get("/{incident_id}/updates", response_model=Page[UpdateOut])
def list_updates(
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    audience: Annotated[str | None, Query(max_length=40)] = None,
    state: Annotated[UpdateState | None, Query()] = None,
) -> Page[UpdateOut]:
    """The incident's status updates, oldest first."""
    rows = flows.list_updates(
        session,
        incident_id=incident_id,
        principal=principal,
        audience=audience,
        state=state.value if state else None,
    )
    return Page(items=[to_out(r) for r in rows], next=None)


@router.post("/{incident_id}/updates/no-change", response_model=UpdateOut, status_code=201)
def no_change(
    incident_id: IncidentId,
    body: NoChangeIn,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> UpdateOut:
    """Publish the audience's last update again with a new next update time."""
    update = flows.no_change_update(
        session,
        incident_id=incident_id,
        audience=body.audience,
        actor=principal,
        policy=_policy(settings),
        next_update_at=body.next_update_at,
    )
    return to_out(update)


@router.get("/{incident_id}/updates/{update_id}", response_model=UpdateOut)
def get_update(
    incident_id: IncidentId, update_id: ItemId, session: SessionDep, principal: PrincipalDep
) -> UpdateOut:
    return to_out(
        flows.get_update(session, incident_id=incident_id, update_id=update_id, principal=principal)
    )


@router.patch("/{incident_id}/updates/{update_id}", response_model=UpdateOut)
def edit_update(
    incident_id: IncidentId,
    update_id: ItemId,
    body: UpdateEdit,
    session: SessionDep,
    principal: PrincipalDep,
) -> UpdateOut:
    """Change a draft; a section given replaces the whole section. 409 once published."""
    update = flows.edit_update(
        session, incident_id=incident_id, update_id=update_id, edit=body, actor=principal
    )
    return to_out(update)


@router.get("/{incident_id}/updates/{update_id}/preview", response_model=PreviewOut)
def preview_update(
    incident_id: IncidentId,
    update_id: ItemId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> PreviewOut:
    """The audience's rendering beside the responders', and what blocks publishing."""
    return flows.preview_update(
        session,
        incident_id=incident_id,
        update_id=update_id,
        principal=principal,
        policy=_policy(settings),
    )


@router.post("/{incident_id}/updates/{update_id}/publish", response_model=UpdateOut)
def publish_update(
    incident_id: IncidentId,
    update_id: ItemId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> UpdateOut:
    """Publish the update; one to an audience that needs approval awaits a second person's.
    422 lists each problem that blocks it, by section."""
    update = flows.publish_update(
        session,
        incident_id=incident_id,
        update_id=update_id,
        actor=principal,
        policy=_policy(settings),
    )
    return to_out(update)


@router.post("/{incident_id}/updates/{update_id}/approve", response_model=UpdateOut)
def approve_update(
    incident_id: IncidentId,
    update_id: ItemId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> UpdateOut:
    """Approve an update awaiting approval, which publishes it; not by its author."""
    update = flows.approve_update(
        session,
        incident_id=incident_id,
        update_id=update_id,
        actor=principal,
        policy=_policy(settings),
    )
    return to_out(update)


@router.post("/{incident_id}/cadence/snooze", response_model=SnoozeOut, status_code=201)
def snooze_cadence(
    incident_id: IncidentId,
    body: SnoozeIn,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> SnoozeOut:
    """Hold the reminders for updates to one audience until a time, with a reason."""
    row = cadence_flows.snooze(
        session, incident_id=incident_id, body=body, actor=principal, policy=_policy(settings)
    )
    return SnoozeOut.model_validate(row, from_attributes=True)
