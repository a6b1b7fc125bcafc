"""The incident page's affected section: the conversations, users and side effects the
incident touched, with the totals per tool that head the report, and the report as CSV.

The report is the API's (`GET /incidents/{id}/affected`, `containment.affected`): it is
assembled whole (its totals count every row), so each list here is paged over the report
by key: `after` names the last conversation, user or interaction shown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from blastwall.auth.roles import Permission
from blastwall.containment import affected as hunt
from blastwall.dependencies import IncidentId, SessionDep
from blastwall.incidents import service as incidents
from blastwall.web.deps import UiDep
from blastwall.web.render import SECURITY_HEADERS, section

router = APIRouter()
PAGE = 25
T = TypeVar("T")
After = Annotated[str | None, Query(max_length=300)]


def keyset(
    rows: Sequence[T], key: Callable[[T], str], after: str | None, limit: int = PAGE
) -> tuple[Sequence[T], str | None]:
    """The `limit` rows after the one whose key is `after` (from the first when it names
    none), and the key of the last one shown when more follow."""
    start = 0
    if after is not None:
        start = next((i + 1 for i, row in enumerate(rows) if key(row) == after), 0)
    shown = rows[start : start + limit]
    more = key(shown[-1]) if shown and start + limit < len(rows) else None
    return shown, more


@router.get("/incidents/{incident_id}/affected")
def affected_section(
    request: Request,
    incident_id: IncidentId,
    session: SessionDep,
    ui: UiDep,
    conversations_after: After = None,
    users_after: After = None,
    effects_after: After = None,
) -> Response:
    """The affected report with its defaults (the incident's conversations from a day before
    detection until now); to a role that may not see content, only a notice, as the API
    refuses that role the report."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=ui.principal)
    described = incidents.describe(session, [incident])[0]
    if not ui.principal.can(Permission.see_content):
        return section(request, "incident/affected.html", incident=described, report=None)
    report = hunt.find_affected(session, incident_id=incident.id, principal=ui.principal)
    chosen = {
        "conversations_after": conversations_after,
        "users_after": users_after,
        "effects_after": effects_after,
    }
    lists: dict[str, Any] = {}
    parts: list[tuple[str, list[Any], Callable[[Any], str]]] = [
        ("conversations", report.conversations, lambda c: str(c["conversation_id"])),
        ("users", report.users, lambda u: str(u["user_id"])),
        ("effects", report.side_effects, lambda r: str(r.interaction_id)),
    ]
    for name, rows, key in parts:
        shown, more = keyset(rows, key, chosen[f"{name}_after"])
        later = {k: v for k, v in chosen.items() if v} | {f"{name}_after": more}
        lists[name] = {
            "rows": shown,
            "total": len(rows),
            "more": f"/ui/incidents/{incident.id}/affected?{urlencode(later)}#affected-{name}"
            if more
            else None,
        }
    return section(
        request,
        "incident/affected.html",
        incident=described,
        report=report,
        lists=lists,
        lines=hunt.totals_lines(report),
    )


@router.get("/incidents/{incident_id}/affected.csv")
def affected_csv(incident_id: IncidentId, session: SessionDep, ui: UiDep) -> Response:
    """The affected report as the API's CSV (`?format=csv`): one line per interaction, the
    same columns, as a file to save."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=ui.principal)
    report = hunt.find_affected(session, incident_id=incident.id, principal=ui.principal)
    return Response(
        hunt.to_csv(report),
        media_type="text/csv",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="incident-{incident.id}-affected.csv"',
        },
    )
