"""Routes of triage: an incident's triage pack, and its blast radius as SVG."""

from __future__ import annotations

from fastapi import APIRouter, Response

from blastwall.dependencies import IncidentId, PrincipalDep, SessionDep
from blastwall.playbooks.api import LibraryDep
from blastwall.triage.graph import to_svg
from blastwall.triage.schemas import TriagePack
from blastwall.triage.service import triage_pack

router = APIRouter(tags=["triage"])


@router.get("/incidents/{incident_id}/triage", response_model=TriagePack)
def get_triage(
    incident_id: IncidentId, session: SessionDep, principal: PrincipalDep, playbooks: LibraryDep
) -> TriagePack:
    """What changed, what is abnormal, what else is exposed, what happened before, what to
    do, who owns it and how to classify it."""
    return triage_pack(
        session,
        incident_id=incident_id,
        principal=principal,
        library=playbooks,
    )


@router.get(
    "/incidents/{incident_id}/triage/blast-radius.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def get_blast_radius_svg(
    incident_id: IncidentId, session: SessionDep, principal: PrincipalDep, playbooks: LibraryDep
) -> Response:
    """The blast radius graph of the triage pack, drawn as SVG."""
    pack = triage_pack(
        session,
        incident_id=incident_id,
        principal=principal,
        library=playbooks,
    )
    return Response(to_svg(pack.blast_radius), media_type="image/svg+xml")
