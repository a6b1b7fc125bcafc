"""The incident page's timeline: the newest entries, earlier ones a page at a time, adding
an entry, and the verdict on a hypothesis.

Each entry is one `<li id="entry-N">` (`incident/_entry.html`), the same whether the page,
the "earlier entries" fragment or the live stream (`timeline_stream`) serves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.dependencies import IncidentId, ItemId, SessionDep, audit_object
from blastwall.incidents import service
from blastwall.incidents import timeline as timeline_service
from blastwall.incidents.models import TimelineEntry
from blastwall.incidents.schemas import EntryCreate, EntryKind, VerdictIn
from blastwall.web.deps import ActionDep, UiDep
from blastwall.web.render import page, templates

router = APIRouter()
NEWEST = 200
"""Entries the page shows at first, and the "earlier entries" fragment adds each time: the
page of the busiest incident stays quick (its timeline runs to a thousand entries)."""

ENTRY_KINDS = [k.value for k in EntryKind]
"""What a person may add, in the order the form offers them (a note first)."""


@dataclass
class TimelineView:
    """Entries oldest first, the state of each hypothesis among them, and the cursor of the
    entries before them (None when they start the timeline)."""

    entries: list[TimelineEntry]
    states: dict[int, str]
    earlier: str | None
    judged: list[TimelineEntry] = field(default_factory=list)

    @property
    def last_id(self) -> int:
        return self.entries[-1].id if self.entries else 0


def recent(
    session: Session, *, incident_id: int, principal: Principal, before: str | None = None
) -> TimelineView:
    """The newest NEWEST entries (before the cursor `before`), in time order."""
    rows, states, earlier = timeline_service.list_recent(
        session, incident_id=incident_id, principal=principal, limit=NEWEST, before=before
    )
    return TimelineView(rows, states, earlier)


def entries_html(view: TimelineView, *, incident_id: int, principal: Principal, csrf: str) -> str:
    """The `<li>` of each entry of `view`, and each hypothesis in `view.judged` again, as an
    out-of-band swap that replaces the one the page shows: what the live stream sends."""
    context: dict[str, Any] = {
        "incident_id": incident_id,
        "timeline": view,
        "csrf": csrf,
        "can": lambda p: principal.can(Permission(p)),
    }
    return templates.get_template("incident/_entries.html").render(context)


@router.get("/incidents/{incident_id}/timeline")
def earlier_entries(
    request: Request,
    incident_id: IncidentId,
    session: SessionDep,
    ui: UiDep,
    before: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The NEWEST entries before the cursor `before`: to htmx, their `<li>`s (with the link
    to those before them), which take the place of the "earlier entries" link; to a
    browser without JavaScript, a page of their own."""
    row = service.get_incident(session, incident_id=incident_id, principal=ui.principal)
    view = recent(session, incident_id=row.id, principal=ui.principal, before=before)
    if request.headers.get("HX-Request") and not request.headers.get("HX-Boosted"):
        return page(request, "incident/_entries.html", incident_id=row.id, timeline=view)
    incident = service.describe(session, [row])[0]
    return page(
        request, "incident/earlier.html", incident=incident, incident_id=row.id, timeline=view
    )


@router.post("/incidents/{incident_id}/timeline")
def add_entry(
    request: Request,
    incident_id: IncidentId,
    act: ActionDep,
    kind: Annotated[str, Form(max_length=40)] = EntryKind.note.value,
    text: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """Add a note, fact, hypothesis, decision or action (the API's `EntryCreate`)."""

    def add() -> str:
        entry = EntryCreate.model_validate({"kind": kind, "text": text})
        row = timeline_service.add_entry(
            act.session, incident_id=incident_id, entry=entry, actor=act.principal
        )
        audit_object(request, f"incident:{incident_id}/timeline:{row.id}")
        return f"/ui/incidents/{incident_id}"

    return act.run(add)


@router.post("/incidents/{incident_id}/timeline/{entry_id}/verdict")
def judge_hypothesis(
    request: Request,
    incident_id: IncidentId,
    entry_id: ItemId,
    act: ActionDep,
    verdict: Annotated[str, Form(max_length=40)] = "",
    text: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """Confirm or refute a hypothesis: a verdict entry that refers to it (the API's
    `VerdictIn`); the hypothesis itself stays as it was written."""

    def judge() -> str:
        data = VerdictIn.model_validate({"verdict": verdict, "text": text})
        row = timeline_service.judge_hypothesis(
            act.session,
            incident_id=incident_id,
            entry_id=entry_id,
            verdict=data,
            actor=act.principal,
        )
        audit_object(request, f"incident:{incident_id}/timeline:{row.id}")
        return f"/ui/incidents/{incident_id}"

    return act.run(judge)
