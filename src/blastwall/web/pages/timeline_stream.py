"""The live timeline: server-sent events carrying each new entry of an incident as the
`<li>` the page shows, whoever wrote it (this server, another process, the CLI).

The stream polls the database (POLL_SECONDS) rather than listening in-process, because
entries are written by other processes too. Each poll is a short read-only session of its
own: nothing is held open while the stream sleeps. Each poll also resolves the browser's
session again, so that signing out, a revoked token or a loss of access ends the stream."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from blastwall.auth import sessions
from blastwall.db import Database
from blastwall.dependencies import IncidentId, SessionDep, get_db
from blastwall.errors import AuthenticationRequired, NotFound
from blastwall.incidents import service
from blastwall.incidents import timeline as timeline_service
from blastwall.pagination import encode_cursor
from blastwall.web.deps import COOKIE, UiDep
from blastwall.web.pages.incident_timeline import NEWEST, TimelineView, entries_html

router = APIRouter()
POLL_SECONDS = 0.25
"""How often the stream looks for new entries: within a second on every open page."""
KEEP_ALIVE_SECONDS = 15.0
"""A comment line this often when nothing is new, so that a dead connection is noticed."""
LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""Where SSE ends a line (and nowhere else, unlike `str.splitlines`)."""
RETRY_MS = 1000
"""How long a browser waits before it reconnects (sending the last event's id)."""


@dataclass(frozen=True)
class Event:
    """One SSE event `entry`: the entries after `after` up to `last` (the event's id)."""

    last: int
    html: str

    def encode(self) -> bytes:
        """An SSE event: the HTML on `data:` lines, one per line (SSE joins them with
        newlines); `id` is the last entry's, which a reconnecting browser sends back. Lines
        break where SSE breaks them, so that other line separators in a text stay as they
        were written."""
        lines = "".join(f"data: {line}\n" for line in LINE_BREAK.split(self.html))
        return f"id: {self.last}\nevent: entry\n{lines}\n".encode()


def poll(db: Database, *, cookie: str | None, incident_id: int, after: int) -> Event:
    """The entries of the incident after entry `after`, rendered for the person whose
    session `cookie` is (verdicts with the hypotheses they judge); an Event with no HTML
    when there are none. Raises AuthenticationRequired or NotFound when the person may no
    longer see the incident."""
    with db.session(read_only=True) as session:
        ui = sessions.resolve(session, cookie=cookie)
        rows, states, _ = timeline_service.list_timeline(
            session,
            incident_id=incident_id,
            principal=ui.principal,
            limit=NEWEST,
            cursor=encode_cursor([after]),
        )
        if not rows:
            return Event(after, "")
        judged, judged_states = timeline_service.judged_hypotheses(
            session, incident_id=incident_id, principal=ui.principal, entries=rows
        )
        sent = {r.id for r in rows}  # a hypothesis judged as it arrives is sent once
        judged = [h for h in judged if h.id not in sent]
        view = TimelineView(rows, {**states, **judged_states}, None, judged)
        html = entries_html(view, incident_id=incident_id, principal=ui.principal, csrf=ui.csrf)
        return Event(rows[-1].id, html)


async def entry_events(
    request: Request, *, db: Database, cookie: str | None, incident_id: int, after: int
) -> AsyncIterator[bytes]:
    """Events until the browser goes away or may no longer see the incident."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    quiet = 0.0
    while not await request.is_disconnected():
        try:
            event = await run_in_threadpool(
                poll, db, cookie=cookie, incident_id=incident_id, after=after
            )
        except (AuthenticationRequired, NotFound):
            return
        if event.html:
            after, quiet = event.last, 0.0
            yield event.encode()
        elif quiet >= KEEP_ALIVE_SECONDS:
            quiet = 0.0
            yield b": keep-alive\n\n"
        await anyio.sleep(POLL_SECONDS)
        quiet += POLL_SECONDS


def _resume_from(request: Request, after: int) -> int:
    """Where to start: after the last event a reconnecting browser had (`Last-Event-ID`),
    else after the entry the page showed last (`after`)."""
    last = request.headers.get("Last-Event-ID", "")
    if last.isdigit() and len(last) < 19:
        return int(last)
    return after


@router.get("/incidents/{incident_id}/timeline/stream")
def timeline_stream(
    request: Request,
    incident_id: IncidentId,
    session: SessionDep,
    ui: UiDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> StreamingResponse:
    """Server-sent events `entry` with the `<li>` of each entry after entry `after`; 404
    for an incident the person may not see (checked before the stream starts)."""
    row = service.get_incident(session, incident_id=incident_id, principal=ui.principal)
    events = entry_events(
        request,
        db=get_db(request),
        cookie=request.cookies.get(COOKIE),
        incident_id=row.id,
        after=_resume_from(request, after),
    )
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
