"""Status updates in storage: drafting, editing, rendering for an audience, the checks that
block publishing, and the published record.

An update's sections hold one item a line. Rendering writes each section under its heading,
an empty one as "None" (never dropped), and passes every text through the audience's
`Redactor`. The checks answer a `Problem` per section that is wrong; publishing refuses an
update with any.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.comms.audiences import Audience
from blastwall.comms.models.updates import (
    ComponentStatus,
    Impact,
    Phase,
    StatusUpdate,
    UpdateState,
)
from blastwall.comms.redaction import Redactor
from blastwall.comms.update_schemas import SECTIONS, RenderingOut, UpdateEdit, UpdateOut
from blastwall.errors import Conflict, NotFound, Problem

__all__ = [
    "HEDGES",
    "check_update",
    "create_update",
    "edit_update",
    "get_update",
    "incident_of",
    "items",
    "last_published",
    "list_updates",
    "mark_published",
    "published_updates",
    "render",
    "to_out",
]

#: Words that say a line is not confirmed: in "what happened" for an external audience they
#: make a hypothesis read as a fact.
HEDGES = re.compile(
    r"(?<!\d\s)\bmay\b(?!\s+\d)|\b(?:might|maybe|possibly|perhaps|probably|likely|unlikely|"
    r"suspected|suspect|presumably|allegedly|unconfirmed|we believe|we think|we suspect|"
    r"(?:appears|seems) to)\b",
    re.I,
)


def items(text: str) -> list[str]:
    """A section's items: its non-empty lines."""
    return [line for line in text.splitlines() if line.strip()]


def _join(values: Iterable[str]) -> str:
    return "\n".join(
        part.strip() for value in values for part in value.splitlines() if part.strip()
    )


def create_update(
    session: Session,
    *,
    incident_id: int,
    audience: str,
    title: str,
    sections: dict[str, list[str]],
    next_update_at: datetime | None,
    phase: Phase,
    impact: Impact,
    component_status: ComponentStatus,
    author: str,
    now: datetime,
    no_change_of: int | None = None,
) -> StatusUpdate:
    row = StatusUpdate(
        incident_id=incident_id,
        audience=audience,
        state=UpdateState.draft,
        title=title[:300],
        next_update_at=next_update_at,
        phase=phase,
        impact=impact,
        component_status=component_status,
        author=author,
        no_change_of=no_change_of,
        rendered={},
        created_at=now,
        updated_at=now,
        **{name: _join(sections.get(name, [])) for name in SECTIONS},
    )
    session.add(row)
    session.flush()
    return row


def get_update(session: Session, *, incident_id: int, update_id: int) -> StatusUpdate:
    row = session.get(StatusUpdate, update_id)
    if row is None or row.incident_id != incident_id:
        raise NotFound(
            f"Incident {incident_id} has no status update {update_id}; "
            f"`blastwall update list {incident_id}` lists them."
        )
    return row


def incident_of(session: Session, *, update_id: int) -> int:
    """The incident of a status update (the caller checks the reader may see it)."""
    row = session.get(StatusUpdate, update_id)
    if row is None:
        raise NotFound(
            f"No status update {update_id}; `blastwall update list INCIDENT` lists them."
        )
    return row.incident_id


def list_updates(
    session: Session, *, incident_id: int, audience: str | None = None, state: str | None = None
) -> list[StatusUpdate]:
    """The incident's updates, oldest first."""
    query = select(StatusUpdate).where(StatusUpdate.incident_id == incident_id)
    if audience:
        query = query.where(StatusUpdate.audience == audience)
    if state:
        query = query.where(StatusUpdate.state == state)
    return list(session.scalars(query.order_by(StatusUpdate.id)))


def published_updates(session: Session, *, incident_id: int) -> list[StatusUpdate]:
    return list_updates(session, incident_id=incident_id, state=UpdateState.published.value)


def last_published(session: Session, *, incident_id: int, audience: str) -> StatusUpdate | None:
    query = (
        select(StatusUpdate)
        .where(
            StatusUpdate.incident_id == incident_id,
            StatusUpdate.audience == audience,
            StatusUpdate.state == UpdateState.published,
        )
        .order_by(StatusUpdate.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def edit_update(
    session: Session, *, update: StatusUpdate, edit: UpdateEdit, now: datetime
) -> StatusUpdate:
    """Change a draft (or one awaiting approval, which goes back to draft: its approval must
    be asked for again); a published update is never changed."""
    if update.state == UpdateState.published:
        raise Conflict(
            f"Status update {update.id} is published and cannot change. Publish a new one "
            f"(`blastwall update draft {update.incident_id} --audience {update.audience}`)."
        )
    changes = edit.model_dump(exclude_unset=True)
    for name in SECTIONS:
        if name in changes and changes[name] is not None:
            setattr(update, name, _join(changes[name]))
    for name in ("title", "phase", "impact", "component_status"):
        if changes.get(name) is not None:
            setattr(update, name, changes[name])
    if "next_update_at" in changes:
        update.next_update_at = changes["next_update_at"]
    update.state = UpdateState.draft
    update.submitted_by = None
    update.updated_at = now
    session.flush()
    return update


def render(update: StatusUpdate, *, audience: str, redactor: Redactor) -> RenderingOut:
    """The update as `audience` reads it, redacted for it."""
    hit: set[str] = set()

    def clean(text: str) -> str:
        redacted, classes = redactor.redact(text)
        hit.update(c.value for c in classes)
        return redacted

    title = clean(update.title)
    sections: dict[str, str] = {}
    for name in SECTIONS:
        lines = [clean(line) for line in items(getattr(update, name))]
        sections[name] = "\n".join(f"- {line}" for line in lines) or "None"
    when = update.next_update_at
    sections["next_update"] = when.strftime("%Y-%m-%d %H:%M UTC") if when else "None"
    parts = [title, f"Status: {update.phase.value}, impact {update.impact.value}"]
    parts += [f"{heading}:\n{sections[name]}" for name, heading in SECTIONS.items()]
    parts.append(f"Next update: {sections['next_update']}")
    return RenderingOut(
        audience=audience,
        title=title,
        sections=sections,
        body="\n\n".join(parts),
        redacted=sorted(hit),
    )


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _restates(line: str, hypotheses: list[str]) -> bool:
    """Whether a line says what an open hypothesis says (one holds the other)."""
    return len(line) >= 12 and any(len(h) >= 12 and (h in line or line in h) for h in hypotheses)


def check_update(
    update: StatusUpdate,
    *,
    audience: Audience,
    redactor: Redactor,
    open_hypotheses: Iterable[str],
    now: datetime,
) -> list[Problem]:
    """What blocks publishing the update to `audience`, one problem per section and kind."""
    problems: list[Problem] = []
    if audience.external:
        hypotheses = [h for h in (_norm(t) for t in open_hypotheses) if h]
        for number, line in enumerate(items(update.what_happened), 1):
            where = f"what_happened[{number}]"
            hedge = HEDGES.search(line)
            if hedge:
                problems.append(
                    Problem(
                        where,
                        f"'{hedge[0]}' makes a hypothesis read as a fact; move the line to "
                        "what_we_are_testing, or state only what is confirmed",
                    )
                )
            elif _restates(_norm(line), hypotheses):
                problems.append(
                    Problem(
                        where,
                        "this is an open hypothesis on the timeline, not a confirmed fact; "
                        "move it to what_we_are_testing, or confirm the hypothesis first",
                    )
                )
    if update.next_update_at is None and update.phase != Phase.resolved:
        problems.append(
            Problem(
                "next_update_at",
                "say when the next update comes (only a resolved update may leave it out)",
            )
        )
    elif update.next_update_at is not None and update.next_update_at <= now:
        problems.append(Problem("next_update_at", "the next update time has passed; move it on"))
    for name in ("title", *SECTIONS):
        for number, line in enumerate(items(getattr(update, name)), 1):
            _, classes = redactor.redact(line)
            if classes:
                where = name if name == "title" else f"{name}[{number}]"
                names = ", ".join(sorted(c.value.replace("_", " ") for c in classes))
                problems.append(
                    Problem(where, f"holds what this audience may not see ({names}); remove it")
                )
    return problems


def mark_published(
    update: StatusUpdate, *, by: str, at: datetime, rendered: dict[str, Any]
) -> None:
    update.state = UpdateState.published
    update.published_by = by
    update.published_at = at
    update.updated_at = at
    update.rendered = rendered


def to_out(update: StatusUpdate) -> UpdateOut:
    data: dict[str, Any] = {
        c: getattr(update, c)
        for c in (
            "id",
            "incident_id",
            "audience",
            "state",
            "title",
            "next_update_at",
            "phase",
            "impact",
            "component_status",
            "author",
            "submitted_by",
            "approver",
            "published_by",
            "published_at",
            "no_change_of",
            "rendered",
            "created_at",
            "updated_at",
        )
    }
    data.update({name: items(getattr(update, name)) for name in SECTIONS})
    return UpdateOut.model_validate(data)
