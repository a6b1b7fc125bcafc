"""The incidents page: open and recent incidents with filters and keyset pagination, and the
candidates waiting for triage, with accept, decline and merge."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response

from blastwall.correlation import flows as correlation_flows
from blastwall.correlation import service as candidates
from blastwall.correlation import triage
from blastwall.correlation.schemas import Accept, Decline, Merge
from blastwall.dependencies import SessionDep, SettingsDep, audit_object
from blastwall.incidents import service
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.schemas import Archetype, Severity, Visibility
from blastwall.inventory import service as inventory
from blastwall.web.deps import ActionDep, UiDep
from blastwall.web.render import page

router = APIRouter()
PAGE = 50
CANDIDATES = 20
FILTERS = ("status", "severity", "system", "archetype", "mine")


@router.get("/incidents")
def incidents_page(
    request: Request,
    session: SessionDep,
    ui: UiDep,
    status: Annotated[Status | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    archetype: Annotated[Archetype | None, Query()] = None,
    system: Annotated[str | None, Query(max_length=100)] = None,
    mine: Annotated[bool, Query()] = False,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Incidents the person may see, newest first, PAGE at a time; the first page also
    lists pending candidates."""
    principal = ui.principal
    rows, next_cursor = service.list_incidents(
        session,
        principal=principal,
        limit=PAGE,
        cursor=cursor,
        status=status.value if status else None,
        severity=severity.value if severity else None,
        archetype=archetype.value if archetype else None,
        system_id=system or None,
        participant=principal.name if mine else None,
    )
    chosen = {
        "status": status.value if status else "",
        "severity": severity.value if severity else "",
        "archetype": archetype.value if archetype else "",
        "system": system or "",
        "mine": "true" if mine else "",
    }
    kept = {k: v for k, v in chosen.items() if v}
    pending: list[object] = []
    if cursor is None:
        found, _ = candidates.list_candidates(
            session, principal=principal, limit=CANDIDATES, status="pending"
        )
        pending = list(candidates.describe(session, found))
    systems, _ = inventory.list_systems(session, limit=500)
    return page(
        request,
        "incidents/list.html",
        incidents=service.describe(session, rows),
        next_url=f"/ui/incidents?{urlencode({**kept, 'cursor': next_cursor})}"
        if next_cursor
        else None,
        first_url=f"/ui/incidents?{urlencode(kept)}" if cursor else None,
        chosen=chosen,
        statuses=[s.value for s in Status],
        severities=[s.value for s in Severity],
        archetypes=[a.value for a in Archetype],
        systems=[s.id for s in systems],
        candidates=pending,
    )


@router.post("/candidates/{candidate_id}/accept")
def accept_candidate(
    request: Request,
    candidate_id: int,
    act: ActionDep,
    title: Annotated[str, Form(max_length=300)] = "",
    archetype: Annotated[Archetype | None, Form()] = None,
    severity: Annotated[Severity | None, Form()] = None,
    visibility: Annotated[Visibility, Form()] = Visibility.open,
) -> Response:
    """Open an incident from the candidate, and show it."""

    def accept() -> str:
        data = Accept(
            title=title.strip() or None,
            archetype=archetype,
            severity=severity,
            visibility=visibility,
        )
        row = triage.accept(act.session, candidate_id=candidate_id, data=data, actor=act.principal)
        audit_object(request, f"candidate:{candidate_id}")
        return f"/ui/incidents/{row.incident_id}"

    return act.run(accept)


@router.post("/candidates/{candidate_id}/decline")
def decline_candidate(
    request: Request,
    candidate_id: int,
    act: ActionDep,
    settings: SettingsDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
    snooze: Annotated[bool, Form()] = False,
) -> Response:
    def decline() -> str:
        policy = correlation_flows.current_policy(settings.correlation_policy)
        data = Decline(reason=reason, snooze=snooze)
        triage.decline(
            act.session, candidate_id=candidate_id, data=data, actor=act.principal, policy=policy
        )
        audit_object(request, f"candidate:{candidate_id}")
        return "/ui/incidents"

    return act.run(decline)


@router.post("/candidates/{candidate_id}/merge")
def merge_candidate(
    request: Request,
    candidate_id: int,
    act: ActionDep,
    incident_id: Annotated[int, Form(ge=1, le=2**62)],
) -> Response:
    def merge() -> str:
        triage.merge(
            act.session,
            candidate_id=candidate_id,
            data=Merge(incident_id=incident_id),
            actor=act.principal,
        )
        audit_object(request, f"candidate:{candidate_id}")
        return f"/ui/incidents/{incident_id}"

    return act.run(merge)
