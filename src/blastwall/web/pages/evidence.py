"""The incident page's evidence section: the incident's evidence items with their chain of
custody and the legal hold, and the export of the signed evidence bundle, with a reason.

Who sees what follows the API's routes exactly: the items and their custody to whoever may
see the incident (`GET /incidents/{id}/evidence`, `GET /evidence/{id}/custody`), never an
item's content here; the export to those the API lets export (`see_content` and the full
view of the incident's evidence), which `flows.export_incident` checks again."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from blastwall.auth.roles import Permission
from blastwall.dependencies import IncidentId, SessionDep, SettingsDep, audit_object
from blastwall.errors import InvalidInput, Problem, field_path
from blastwall.evidence import custody, flows, service
from blastwall.evidence.schemas import AccessIn, HoldOut, ItemOut, RecordOut
from blastwall.evidence.store import Vault
from blastwall.evidence.witness import Witness
from blastwall.incidents import service as incidents
from blastwall.web.deps import ActionDep, UiDep
from blastwall.web.render import SECURITY_HEADERS, section

router = APIRouter()
PAGE = 25
CUSTODY = 20
"""Records of custody shown per item; the API's `GET /evidence/{id}/custody` pages on."""


@router.get("/incidents/{incident_id}/evidence")
def evidence_section(
    request: Request,
    incident_id: IncidentId,
    session: SessionDep,
    ui: UiDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The incident's evidence items, oldest first, PAGE at a time, each with the first
    CUSTODY records of its chain of custody."""
    principal = ui.principal
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    rows, next_cursor = service.list_items(
        session, incident_id=incident.id, principal=principal, limit=PAGE, cursor=cursor
    )
    chains: dict[int, tuple[list[RecordOut], bool]] = {}
    for row in rows:
        records, more = custody.custody(session, item_id=row.id, principal=principal, limit=CUSTODY)
        chains[row.id] = ([RecordOut.of(r) for r in records], more is not None)
    hold = custody.hold_of(session, incident_id=incident.id)
    may_export = principal.can(Permission.see_content) and custody.has_full_view(
        session, incident_id=incident.id, principal=principal
    )
    return section(
        request,
        "incident/evidence.html",
        incident=incidents.describe(session, [incident])[0],
        items=[ItemOut.model_validate(r) for r in rows],
        chains=chains,
        hold=HoldOut(
            incident_id=incident.id,
            held=hold is not None,
            reason=hold.reason if hold else None,
            placed_by=hold.placed_by if hold else None,
            placed_at=hold.placed_at if hold else None,
        ),
        may_export=may_export,
        next_url=f"/ui/incidents/{incident.id}/evidence?cursor={next_cursor}"
        if next_cursor
        else None,
        first_url=f"/ui/incidents/{incident.id}/evidence" if cursor else None,
    )


def _access(reason: str) -> AccessIn:
    """The API's input of the export, checked as the API checks it; a 422 naming the field
    when it is wrong (as `Action.run` answers a form's problems)."""
    try:
        return AccessIn(reason=reason)
    except ValidationError as exc:
        problems = [Problem(field_path(e["loc"]) or "form", e["msg"]) for e in exc.errors()]
        raise InvalidInput(
            f"The form has {len(problems)} problem(s); correct them and send it again.",
            problems,
        ) from exc


@router.post("/incidents/{incident_id}/evidence/export")
def export_evidence(
    request: Request,
    incident_id: IncidentId,
    act: ActionDep,
    settings: SettingsDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The incident's signed evidence bundle (a zip), as a file to save; the export and its
    reason are recorded in the evidence ledger and the request in the audit log.

    The form's CSRF token is checked (`ActionDep`) but the export does not go through
    `Action.run`: that runs a form once per idempotency key and answers a redirect, while
    an export answers the bundle itself. A download is safe to repeat, so a form sent again
    exports again (and records that export too) rather than answering a redirect with no
    file."""
    incidents.get_incident(act.session, incident_id=incident_id, principal=act.principal)
    body = _access(reason)
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115
    try:
        flows.export_incident(
            act.session,
            vault=Vault.of(settings),
            incident_id=incident_id,
            out=spool,
            reason=body.reason,
            actor=act.principal,
            witness=Witness.of(settings),
        )
    except BaseException:
        spool.close()
        raise
    audit_object(request, f"incident:{incident_id}/evidence")
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while chunk := spool.read(1 << 20):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="incident-{incident_id}-evidence.zip"',
        },
    )
