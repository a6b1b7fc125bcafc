"""The incident page's Obligations section: each candidate or decided obligation with its
clocks (deadline, time left or overdue), why it matched and the facts it rests on; and,
for those who may decide obligations (legal, admin), the decision and the submissions.

Reads and actions go through the flows the API calls (`obligations.flows`): the roles and
the restricted-incident rule are checked there."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from blastwall.auth.roles import Permission
from blastwall.db import utcnow
from blastwall.dependencies import IncidentId, ItemId, SessionDep, SettingsDep, audit_object
from blastwall.evidence.api import VaultDep
from blastwall.gate import too_large
from blastwall.incidents import service as incidents
from blastwall.obligations import flows, service
from blastwall.obligations.rules import SubmissionKind
from blastwall.obligations.schemas import Decision, DecisionIn
from blastwall.web.deps import ActionDep, UiDep
from blastwall.web.forms import utc_time
from blastwall.web.pages.section_back import back
from blastwall.web.render import section

router = APIRouter()
SECTION = "obligations"


@router.get("/incidents/{incident_id}/obligations")
def obligations_section(
    request: Request, incident_id: IncidentId, session: SessionDep, ui: UiDep
) -> Response:
    """The incident's obligations with their clocks, and the facts the rules are judged on."""
    row = incidents.get_incident(session, incident_id=incident_id, principal=ui.principal)
    incident = incidents.describe(session, [row])[0]
    return section(
        request,
        "incident/obligations.html",
        incident=incident,
        obligations=flows.describe(session, incident_id=incident.id, principal=ui.principal),
        facts=list(service.facts_of(session, incident_id=incident.id).values()),
        decisions=[d.value for d in Decision],
        kinds=[k.value for k in SubmissionKind],
        now=utcnow(),
    )


@router.post("/incidents/{incident_id}/obligations/{obligation_id}/decision")
def decide(
    request: Request,
    incident_id: IncidentId,
    obligation_id: ItemId,
    act: ActionDep,
    decision: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Confirm the obligation, or dismiss it as not applicable, with a reason."""

    def run() -> str:
        body = DecisionIn.model_validate({"decision": decision, "reason": reason})
        flows.decide(
            act.session,
            incident_id=incident_id,
            obligation_id=obligation_id,
            body=body,
            actor=act.principal,
        )
        audit_object(request, f"obligation:{obligation_id}")
        return back(
            request, incident_id=incident_id, section=SECTION, anchor=f"#obligation-{obligation_id}"
        )

    return act.run(run)


@router.post("/incidents/{incident_id}/obligations/{obligation_id}/submissions")
def add_submission(
    request: Request,
    incident_id: IncidentId,
    obligation_id: ItemId,
    act: ActionDep,
    settings: SettingsDep,
    vault: VaultDep,
    kind: Annotated[SubmissionKind, Form()],
    submitted_at: Annotated[str, Form(max_length=40)],
    reference: Annotated[str, Form(max_length=300)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    document: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Record a report filed for a confirmed obligation; the filed document, when given, is
    kept as the incident's evidence (as the API's submission does)."""
    act.principal.require(Permission.decide_obligations)
    limit = settings.evidence_max_upload_bytes
    filed = None
    if document is not None and document.filename:
        data = document.file.read(limit + 1)
        if len(data) > limit:
            raise too_large(
                limit, "Add the document with `blastwall obligations submit --file` on the server."
            )
        media = (document.content_type or "application/octet-stream")[:100]
        filed = (data, document.filename[:300], media) if data else None

    def run() -> str:
        flows.record_submission(
            act.session,
            incident_id=incident_id,
            obligation_id=obligation_id,
            kind=kind,
            submitted_at=utc_time(submitted_at, field="submitted_at", what="The submission time"),
            reference=reference,
            note=note,
            document=filed,
            actor=act.principal,
            vault=vault,
        )
        audit_object(request, f"obligation:{obligation_id}")
        return back(
            request, incident_id=incident_id, section=SECTION, anchor=f"#obligation-{obligation_id}"
        )

    return act.run(run)
