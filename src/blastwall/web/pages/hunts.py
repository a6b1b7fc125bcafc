"""The hunts pages: the retro-hunts, a form to start one, and one hunt's progress and matches
with a form to attach it to an incident.

A hunt is started as the API starts it (`evidence.api.create_hunt`): `hunt.create_hunt`
checks and stores it in the request's transaction, and it runs in a background task once the
answer is sent, after the commit; the runner commits its progress (`scanned` of `total`)
after each window. The hunt's page polls its status fragment every second while it is queued
or running, and stops polling when the fragment comes back without its trigger (done or
failed). Hunts read stored content: every role without `see_content` is refused by the
service, as in the API."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Form, Path, Query, Request, Response

from blastwall.auth.roles import Permission
from blastwall.dependencies import SessionDep, SettingsDep, audit_object, get_db
from blastwall.evidence import flows, hunt
from blastwall.evidence.schemas import AttachIn, HuntIn
from blastwall.evidence.store import Vault
from blastwall.inventory import service as inventory
from blastwall.web.deps import ActionDep, UiDep
from blastwall.web.render import page

log = logging.getLogger("blastwall.evidence")
router = APIRouter()
PAGE = 50
MATCHES = 50
RUNNING = frozenset({"queued", "running"})
Mode = Literal["pattern", "text", "canary"]
HuntId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/hunts")
def hunts_page(
    request: Request,
    session: SessionDep,
    ui: UiDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Hunts newest first, PAGE at a time, and the form that starts one. A role that may not
    see content is told so, rather than shown an error."""
    allowed = ui.principal.can(Permission.see_content)
    rows, next_cursor = (
        hunt.list_hunts(session, principal=ui.principal, limit=PAGE, cursor=cursor)
        if allowed
        else ([], None)
    )
    systems, _ = inventory.list_systems(session, limit=500)
    return page(
        request,
        "hunts/list.html",
        allowed=allowed,
        hunts=rows,
        systems=[s.id for s in systems],
        next_url=f"/ui/hunts?cursor={next_cursor}" if next_cursor else None,
        first_url="/ui/hunts" if cursor else None,
    )


def _since(value: str) -> str | datetime | None:
    """The form's `since` (a `datetime-local` field, read as UTC), for HuntIn to check."""
    value = value.strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # HuntIn names the field in its answer
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.post("/hunts")
def start_hunt(
    request: Request,
    act: ActionDep,
    background: BackgroundTasks,
    settings: SettingsDep,
    mode: Annotated[Mode, Form()],
    query: Annotated[str, Form(max_length=2000)],
    system: Annotated[str, Form(max_length=100)] = "",
    since: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Start a retro-hunt and show its page, where its progress shows."""

    def start() -> str:
        data = HuntIn.model_validate(
            {mode: query, "system": system.strip() or None, "since": _since(since)}
        )
        row = hunt.create_hunt(act.session, data=data, actor=act.principal)
        background.add_task(hunt.run_in_background, get_db(request), row.id, settings.hunt_workers)
        audit_object(request, f"hunt:{row.id}")
        return f"/ui/hunts/{row.id}"

    return act.run(start)


def _status(
    request: Request,
    session: SessionDep,
    ui: UiDep,
    hunt_id: int,
    cursor: str | None,
    attached: int | None,
    template: str,
) -> Response:
    row = hunt.get_hunt(session, hunt_id=hunt_id, principal=ui.principal)
    matches, next_cursor = (
        hunt.list_matches(
            session, hunt_id=row.id, principal=ui.principal, limit=MATCHES, cursor=cursor
        )
        if row.state == "done"
        else ([], None)
    )
    return page(
        request,
        template,
        hunt=row,
        running=row.state in RUNNING,
        matches=matches,
        attached=attached,
        next_url=f"/ui/hunts/{row.id}?cursor={next_cursor}" if next_cursor else None,
        first_url=f"/ui/hunts/{row.id}" if cursor else None,
    )


@router.get("/hunts/{hunt_id}")
def hunt_page(
    request: Request,
    hunt_id: HuntId,
    session: SessionDep,
    ui: UiDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    attached: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """One hunt: its query, progress and, once done, its summary and matches."""
    return _status(request, session, ui, hunt_id, cursor, attached, "hunts/detail.html")


@router.get("/hunts/{hunt_id}/status")
def hunt_status(
    request: Request,
    hunt_id: HuntId,
    session: SessionDep,
    ui: UiDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The hunt's status fragment, which its page polls while it runs (to a browser without
    htmx, the whole page)."""
    fragment = request.headers.get("HX-Request") and not request.headers.get("HX-Boosted")
    name = "hunts/_status.html" if fragment else "hunts/detail.html"
    return _status(request, session, ui, hunt_id, cursor, None, name)


@router.post("/hunts/{hunt_id}/attach")
def attach_hunt(
    request: Request,
    hunt_id: HuntId,
    act: ActionDep,
    settings: SettingsDep,
    incident: Annotated[str, Form(max_length=30)],
) -> Response:
    """Attach the finished hunt to an incident, as the API does: its matches become the
    incident's evidence and the affected conversations and users go on its timeline."""

    def attach() -> str:
        data = AttachIn.model_validate({"incident": incident.strip()})
        flows.attach_hunt(
            act.session,
            vault=Vault.of(settings),
            hunt_id=hunt_id,
            incident_id=data.incident,
            actor=act.principal,
        )
        audit_object(request, f"hunt:{hunt_id},incident:{data.incident}")
        return f"/ui/hunts/{hunt_id}?attached={data.incident}"

    return act.run(attach)
