"""Routes of playbooks: the library, CACAO export, and an incident's checklist."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from blastwall.auth.roles import Permission
from blastwall.containment.api import notify_guards
from blastwall.containment.policy import load_policy
from blastwall.containment.schemas import ActionState
from blastwall.containment.service import action_out
from blastwall.dependencies import (
    IncidentId,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    audit_object,
)
from blastwall.pagination import Page
from blastwall.playbooks import flows, service
from blastwall.playbooks.cacao import to_cacao
from blastwall.playbooks.library import Library, Playbook, library
from blastwall.playbooks.schemas import (
    AttachIn,
    ChecklistStepOut,
    PlaybookSummary,
    StepCompletion,
    StepRun,
    StepRunOut,
)

router = APIRouter(tags=["playbooks"])
PlaybookId = Annotated[str, Path(max_length=80)]
StepRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="The step's id (a number, as listed), `PLAYBOOK:NUMBER` (its number in "
        "that playbook's checklist), or its name: the step id or a unique prefix of its id "
        "or title, case-insensitive (`PLAYBOOK:NAME` narrows to one playbook).",
    ),
]


def playbook_library(settings: SettingsDep) -> Library:
    """The playbooks of this installation: the shipped ones and its `playbook_dir`."""
    return library(settings.playbook_dir)


LibraryDep = Annotated[Library, Depends(playbook_library)]


@router.get("/playbooks", response_model=Page[PlaybookSummary])
def list_playbooks(principal: PrincipalDep, found: LibraryDep) -> Page[PlaybookSummary]:
    """Every playbook: the shipped ones and the organisation's (all on one page)."""
    principal.require(Permission.read)
    items = [
        PlaybookSummary.of(p, custom=p.id in found.custom)
        for p in sorted(found.playbooks.values(), key=lambda p: p.id)
    ]
    return Page(items=items, next=None)


@router.get("/playbooks/{playbook_id}", response_model=Playbook)
def show_playbook(
    playbook_id: PlaybookId, principal: PrincipalDep, playbooks: LibraryDep
) -> Playbook:
    """One playbook with its steps and their conditions."""
    principal.require(Permission.read)
    return playbooks.get(playbook_id)


@router.get("/playbooks/{playbook_id}/cacao")
def export_cacao(
    playbook_id: PlaybookId, principal: PrincipalDep, playbooks: LibraryDep
) -> dict[str, Any]:
    """The playbook as an OASIS CACAO Security Playbook 2.0 document."""
    principal.require(Permission.read)
    return to_cacao(playbooks.get(playbook_id))


@router.post(
    "/incidents/{incident_id}/playbooks", response_model=list[ChecklistStepOut], status_code=201
)
def attach_playbook(
    request: Request,
    incident_id: IncidentId,
    body: AttachIn,
    session: SessionDep,
    principal: PrincipalDep,
    playbooks: LibraryDep,
) -> list[ChecklistStepOut]:
    """Attach a playbook (by default the incident archetype's); its steps that apply to the
    incident's severity and systems become a checklist."""
    rows = service.attach(
        session,
        incident_id=incident_id,
        library=playbooks,
        playbook_id=body.playbook,
        actor=principal,
    )
    audit_object(request, f"incident:{incident_id}")
    return [ChecklistStepOut.model_validate(r) for r in rows]


@router.get("/incidents/{incident_id}/checklist", response_model=Page[ChecklistStepOut])
def get_checklist(
    incident_id: IncidentId, session: SessionDep, principal: PrincipalDep
) -> Page[ChecklistStepOut]:
    """The checklist of the playbooks attached to the incident (all on one page)."""
    rows = service.checklist(session, incident_id=incident_id, principal=principal)
    return Page(items=[ChecklistStepOut.model_validate(r) for r in rows], next=None)


@router.post("/incidents/{incident_id}/checklist/{step}/complete", response_model=ChecklistStepOut)
def complete_step(
    request: Request,
    incident_id: IncidentId,
    step: StepRef,
    body: StepCompletion,
    session: SessionDep,
    principal: PrincipalDep,
) -> ChecklistStepOut:
    """Mark a step done, or skipped; a decision step takes one of its options as outcome."""
    found = service.find_step(
        session, incident_id=incident_id, step=step, principal=principal, row_id=True
    )
    row = service.complete(
        session, incident_id=incident_id, item_id=found.id, completion=body, actor=principal
    )
    audit_object(request, f"incident:{incident_id}/checklist:{row.id}")
    return ChecklistStepOut.model_validate(row)


@router.post(
    "/incidents/{incident_id}/checklist/{step}/run",
    response_model=StepRunOut,
    status_code=201,
    responses={202: {"model": StepRunOut, "description": "The action waits for approval."}},
)
def run_step(
    request: Request,
    response: Response,
    incident_id: IncidentId,
    step: StepRef,
    body: StepRun,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> StepRunOut:
    """Run a containment step: its control is applied through containment (201), or waits for
    a second person's approval (202) as the containment policy says. The step is ticked
    with the action's number when the action is applied; until then it is linked to it."""
    found = service.find_step(
        session, incident_id=incident_id, step=step, principal=principal, row_id=True
    )
    row, action, message = flows.run_containment(
        session,
        incident_id=incident_id,
        item_id=found.id,
        run=body,
        actor=principal,
        policy=load_policy(settings.containment_policy),
        snapshot_interactions=settings.containment_snapshot_interactions,
    )
    audit_object(request, f"incident:{incident_id}/action:{action.id}")
    if action.state == ActionState.active:
        notify_guards(request, session, action)
    else:
        response.status_code = 202
    return StepRunOut(step=ChecklistStepOut.model_validate(row), action=action_out(action, message))
