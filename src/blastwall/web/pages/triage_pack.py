"""The incident page's triage section: the triage pack (recent changes, anomalies, the blast
radius drawn inline and listed, similar incidents) and the playbook checklist, whose steps a
person who may write incidents ticks here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from markupsafe import Markup

from blastwall.dependencies import IncidentId, ItemId, SessionDep, SettingsDep, audit_object
from blastwall.incidents import service as incidents
from blastwall.playbooks import service as playbooks
from blastwall.playbooks.library import library
from blastwall.playbooks.schemas import AttachIn, ChecklistStepOut, StepCompletion
from blastwall.triage.graph import to_svg
from blastwall.triage.service import triage_pack
from blastwall.web.deps import ActionDep, UiDep
from blastwall.web.pages.section_back import back
from blastwall.web.render import section

router = APIRouter()
NAME = "triage"


@router.get("/incidents/{incident_id}/triage")
def triage_section(
    request: Request, incident_id: IncidentId, session: SessionDep, settings: SettingsDep, ui: UiDep
) -> Response:
    """The triage pack the API serves (`GET /incidents/{id}/triage`) and the checklist of
    the playbooks attached to the incident."""
    principal = ui.principal
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    pack = triage_pack(
        session,
        incident_id=incident.id,
        principal=principal,
        library=library(settings.playbook_dir),
    )
    steps = playbooks.checklist(session, incident_id=incident.id, principal=principal)
    drawn = to_svg(
        pack.blast_radius,
        title=f"Blast radius of incident {incident.id}: {len(pack.blast_radius.systems)} "
        f"involved system(s), {len(pack.blast_radius.exposed)} also exposed",
        title_id="blast-radius-svg-title",
    )
    return section(
        request,
        "incident/triage.html",
        incident=incidents.describe(session, [incident])[0],
        pack=pack,
        svg=Markup(drawn),  # to_svg escapes every label it writes
        labels={
            n.id: n.label if n.kind == "system" else f"{n.kind} {n.label}"
            for n in pack.blast_radius.nodes
        },
        steps=[ChecklistStepOut.model_validate(r) for r in steps],
    )


@router.post("/incidents/{incident_id}/checklist/{item_id}/complete")
def complete_step(
    request: Request,
    incident_id: IncidentId,
    item_id: ItemId,
    act: ActionDep,
    outcome: Annotated[str | None, Form(max_length=200)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
    skip: Annotated[bool, Form()] = False,
) -> Response:
    """Tick a checklist step (`item_id`, the row's id as the section lists it) done, or
    skipped; a decision step takes one of its options as outcome."""

    def complete() -> str:
        completion = StepCompletion(outcome=outcome or None, note=note, skip=skip)
        found = playbooks.find_step(
            act.session,
            incident_id=incident_id,
            step=str(item_id),
            principal=act.principal,
            row_id=True,
        )
        row = playbooks.complete(
            act.session,
            incident_id=incident_id,
            item_id=found.id,
            completion=completion,
            actor=act.principal,
        )
        audit_object(request, f"incident:{incident_id}/checklist:{row.id}")
        return back(request, incident_id=incident_id, section=NAME)

    return act.run(complete)


@router.post("/incidents/{incident_id}/playbooks")
def attach_playbook(
    request: Request,
    incident_id: IncidentId,
    act: ActionDep,
    settings: SettingsDep,
    playbook: Annotated[str | None, Form(max_length=80)] = None,
) -> Response:
    """Attach a playbook (by default the incident archetype's): its steps become the
    checklist."""

    def attach() -> str:
        incidents.get_incident(act.session, incident_id=incident_id, principal=act.principal)
        data = AttachIn(playbook=playbook or None)
        playbooks.attach(
            act.session,
            incident_id=incident_id,
            library=library(settings.playbook_dir),
            playbook_id=data.playbook,
            actor=act.principal,
        )
        audit_object(request, f"incident:{incident_id}")
        return back(request, incident_id=incident_id, section=NAME)

    return act.run(attach)
