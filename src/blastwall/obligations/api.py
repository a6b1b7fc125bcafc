"""Obligation routes: an incident's obligations with their clocks, its facts and anchors,
legal's decisions, submissions, drafts; the organisation profile in force."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime

from blastwall.auth.roles import Permission
from blastwall.dependencies import IncidentId, PrincipalDep, SessionDep, SettingsDep, audit_object
from blastwall.errors import NotFound
from blastwall.evidence.api import VaultDep
from blastwall.gate import too_large
from blastwall.incidents import service as incidents
from blastwall.obligations import drafts, flows, service
from blastwall.obligations.rules import Anchor, SubmissionKind
from blastwall.obligations.schemas import (
    AnchorIn,
    AnchorOut,
    DecisionIn,
    FactOut,
    FactsIn,
    ObligationOut,
    ProfileOut,
)

router = APIRouter(tags=["obligations"])
ObligationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The obligation's number.")]


@router.get("/incidents/{incident_id}/obligations", response_model=list[ObligationOut])
def list_obligations(
    incident_id: IncidentId, session: SessionDep, principal: PrincipalDep
) -> list[ObligationOut]:
    """Candidate and decided obligations of the incident: the rule, why it matched, what
    would rule it out, and each report's clock (the earliest deadline, others beside)."""
    return flows.describe(session, incident_id=incident_id, principal=principal)


@router.get("/incidents/{incident_id}/obligations/facts", response_model=list[FactOut])
def list_facts(
    incident_id: IncidentId, session: SessionDep, principal: PrincipalDep
) -> list[FactOut]:
    """The facts the rules are judged on."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    rows = service.facts_of(session, incident_id=incident.id).values()
    return [FactOut.model_validate(r) for r in rows]


@router.post("/incidents/{incident_id}/obligations/facts", response_model=list[ObligationOut])
def set_facts(
    incident_id: IncidentId, body: FactsIn, session: SessionDep, principal: PrincipalDep
) -> list[ObligationOut]:
    """Record facts (confirmed or suspected); the rules are judged again."""
    flows.set_facts(session, incident_id=incident_id, body=body, actor=principal)
    return flows.describe(session, incident_id=incident_id, principal=principal)


@router.get("/incidents/{incident_id}/obligations/anchors", response_model=list[AnchorOut])
def list_anchors(
    incident_id: IncidentId, session: SessionDep, principal: PrincipalDep
) -> list[AnchorOut]:
    """The moments the clocks run from; awareness defaults to the detection time."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    return list(flows.anchors(session, incident).values())


@router.put("/incidents/{incident_id}/obligations/anchors/{kind}", response_model=AnchorOut)
def set_anchor(
    incident_id: IncidentId,
    kind: Anchor,
    body: AnchorIn,
    session: SessionDep,
    principal: PrincipalDep,
) -> AnchorOut:
    """Set a clock anchor (awareness, classified_major, ...): the clocks move, and the
    change is on the timeline."""
    return flows.set_anchor(session, incident_id=incident_id, kind=kind, body=body, actor=principal)


@router.get("/incidents/{incident_id}/obligations/{obligation_id}", response_model=ObligationOut)
def get_obligation(
    incident_id: IncidentId,
    obligation_id: ObligationId,
    session: SessionDep,
    principal: PrincipalDep,
) -> ObligationOut:
    return flows.describe(
        session, incident_id=incident_id, principal=principal, obligation_id=obligation_id
    )[0]


@router.post(
    "/incidents/{incident_id}/obligations/{obligation_id}/decision", response_model=ObligationOut
)
def decide(
    incident_id: IncidentId,
    obligation_id: ObligationId,
    body: DecisionIn,
    session: SessionDep,
    principal: PrincipalDep,
) -> ObligationOut:
    """Confirm the obligation, or dismiss it as not applicable, with a reason (legal,
    admin)."""
    return flows.decide(
        session, incident_id=incident_id, obligation_id=obligation_id, body=body, actor=principal
    )


@router.post(
    "/incidents/{incident_id}/obligations/{obligation_id}/submissions",
    response_model=ObligationOut,
    status_code=201,
)
async def add_submission(
    request: Request,
    incident_id: IncidentId,
    obligation_id: ObligationId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    vault: VaultDep,
    kind: Annotated[SubmissionKind, Query()],
    submitted_at: Annotated[
        AwareDatetime, Query(description="When it was filed, with its zone offset.")
    ],
    reference: Annotated[str, Query(max_length=300)] = "",
    name: Annotated[str, Query(max_length=300, description="The filed document's name.")] = "",
    note: Annotated[str, Query(max_length=2000)] = "",
) -> ObligationOut:
    """Record a report filed for a confirmed obligation (legal, admin). The request body,
    when there is one, is the filed document, byte for byte (its Content-Type kept): it is
    preserved as the incident's evidence."""
    principal.require(Permission.decide_obligations)
    data = await request.body()
    if len(data) > settings.evidence_max_upload_bytes:
        raise too_large(
            settings.evidence_max_upload_bytes,
            "Add the document with `blastwall obligations submit --file` on the server.",
        )
    media = request.headers.get("content-type", "application/octet-stream")[:100]
    document = (data, name or f"obligation-{obligation_id}-{kind.value}", media) if data else None
    out = flows.record_submission(
        session,
        incident_id=incident_id,
        obligation_id=obligation_id,
        kind=kind,
        submitted_at=submitted_at,
        reference=reference,
        note=note,
        document=document,
        actor=principal,
        vault=vault,
    )
    audit_object(request, f"obligation:{obligation_id}")
    return out


@router.get(
    "/incidents/{incident_id}/obligations/{obligation_id}/draft",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/markdown": {}, "application/pdf": {}}}},
)
def draft(
    incident_id: IncidentId,
    obligation_id: ObligationId,
    session: SessionDep,
    principal: PrincipalDep,
    format: Annotated[Literal["markdown", "pdf"], Query()] = "markdown",
) -> Response:
    """The report's draft from confirmed facts, its gaps listed first: Markdown, or PDF."""
    found = drafts.render(
        session, incident_id=incident_id, obligation_id=obligation_id, principal=principal
    )
    if format == "pdf":
        return Response(drafts.to_pdf(found.markdown), media_type="application/pdf")
    return PlainTextResponse(found.markdown, media_type="text/markdown; charset=utf-8")


@router.get("/organisation", response_model=ProfileOut)
def organisation(session: SessionDep, principal: PrincipalDep) -> ProfileOut:
    """The organisation profile in force (`organisation.yaml`, applied with `blastwall
    inventory apply`)."""
    current = service.current_profile(session)
    if current is None:
        raise NotFound(
            "No organisation profile has been applied. Put an organisation.yaml beside the "
            "inventory and run `blastwall inventory apply`."
        )
    row, spec = current
    return ProfileOut(
        id=row.id,
        organisation=spec.organisation,
        source=row.source,
        applied_by=row.applied_by,
        applied_at=row.applied_at,
        spec=row.spec,
    )
