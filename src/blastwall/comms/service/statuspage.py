"""The status page's storage: its components (declared in YAML), the status incidents it keeps
from the updates published publicly, and its maintenance windows."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from blastwall.comms.models.statuspage import (
    RANK,
    ComponentStatus,
    Impact,
    Phase,
    StatusComponent,
    StatusIncident,
    StatusIncidentUpdate,
    StatusKind,
)
from blastwall.errors import InvalidInput, NotFound, Problem, field_path
from blastwall.settings import Settings

__all__ = [
    "HISTORY_DAYS",
    "LIST_LIMIT",
    "ComponentSpec",
    "PageInfo",
    "Published",
    "StatusPageSpec",
    "add_maintenance",
    "apply_components",
    "components",
    "get_maintenance",
    "load_spec",
    "maintenance_phase",
    "maintenances",
    "new_id",
    "open_incidents",
    "recent_incidents",
    "record_update",
    "updates_of",
    "withdraw",
    "worst",
]

log = logging.getLogger("blastwall.comms.statuspage")

HISTORY_DAYS = 90
"""How far back the page shows incidents and maintenances."""
LIST_LIMIT = 50
"""Incidents (and maintenances) a list of the page holds at most, newest first."""
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
INCIDENT_PHASES = (Phase.investigating, Phase.identified, Phase.monitoring, Phase.resolved)


@dataclass(frozen=True)
class PageInfo:
    """What the page says of itself: its name and the address readers open it at (the
    links of the messages to subscribers start there)."""

    name: str
    url: str
    time_zone: str = "Etc/UTC"

    @classmethod
    def of(cls, settings: Settings) -> PageInfo:
        return cls(name=settings.status_page_name, url=settings.status_page_url.rstrip("/"))


class ComponentSpec(BaseModel):
    """One declared component: an AI system, or several that readers see as one."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    systems: list[str] = Field(default_factory=list, max_length=500)
    group: str | None = Field(default=None, min_length=1, max_length=200)
    public_systems: bool = False
    """Show the ids of `systems` on the page (hidden by default)."""


class StatusPageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    components: list[ComponentSpec] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _unique(self) -> StatusPageSpec:
        seen: set[str] = set()
        for component in self.components:
            if component.id in seen:
                raise ValueError(f"component id '{component.id}' is declared twice")
            seen.add(component.id)
        return self


def load_spec(path: Path) -> StatusPageSpec:
    """The declaration in the YAML file at `path`; InvalidInput naming each problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(
            f"The status page file {path} cannot be read ({exc.strerror}); give a readable "
            "YAML file."
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"The status page file {path} is not valid YAML: {exc}") from None
    try:
        return StatusPageSpec.model_validate(data or {})
    except ValidationError as exc:
        problems = [Problem(field_path(e["loc"]) or "file", e["msg"]) for e in exc.errors()]
        raise InvalidInput(
            f"The status page file {path} has {len(problems)} problem(s); fix them and "
            "apply it again.",
            problems,
        ) from None


def apply_components(
    session: Session, *, spec: StatusPageSpec, now: datetime
) -> tuple[int, int, int]:
    """Make the page's components those declared: add, change, and remove those no longer
    declared. Answers (added, changed, removed)."""
    existing = {c.id: c for c in session.scalars(select(StatusComponent))}
    added = changed = 0
    for position, declared in enumerate(spec.components):
        values: dict[str, Any] = {
            "name": declared.name,
            "description": declared.description,
            "group": declared.group,
            "systems": sorted(set(declared.systems)),
            "show_systems": declared.public_systems,
            "position": position,
        }
        row = existing.pop(declared.id, None)
        if row is None:
            session.add(StatusComponent(id=declared.id, created_at=now, updated_at=now, **values))
            added += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            changed += 1
    for row in existing.values():
        session.delete(row)
    session.flush()
    return added, changed, len(existing)


def components(session: Session) -> list[StatusComponent]:
    return list(session.scalars(select(StatusComponent).order_by(StatusComponent.position)))


def new_id() -> str:
    """A random id of the page's own (lower-case letters and digits, like Statuspage's)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def worst(statuses: Sequence[ComponentStatus]) -> ComponentStatus:
    return max(statuses, key=RANK.__getitem__, default=ComponentStatus.operational)


def _member(enum: Any, value: str, default: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        log.warning("a published update has %s '%s'; '%s' shown instead", what, value, default)
        return default


def _one_line(text: str) -> str:
    """A title as one line of printable text (no NUL, no line break to reach a header)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


@dataclass(frozen=True)
class Published:
    """An update published to a public audience, as the page records it."""

    update_id: int
    incident_id: int
    system_ids: Sequence[str]
    title: str
    body: str
    phase: str
    impact: str
    component_status: str
    at: datetime


def record_update(
    session: Session, *, published: Published
) -> tuple[StatusIncident, StatusIncidentUpdate | None]:
    """Record an update on the status incident of its incident (made at its first update):
    phase, impact, the components of its systems and what it says of them. Answers the
    status incident and the update recorded, None where this update was recorded before."""
    known = session.scalar(
        select(StatusIncidentUpdate).where(
            StatusIncidentUpdate.source_update_id == published.update_id
        )
    )
    phase = _member(Phase, published.phase, Phase.investigating, "the phase")
    if phase not in INCIDENT_PHASES:
        phase = Phase.investigating
    impact = _member(Impact, published.impact, Impact.minor, "the impact")
    status = _member(
        ComponentStatus, published.component_status, ComponentStatus.degraded_performance, "status"
    )
    systems = set(published.system_ids)
    affected = [c.id for c in components(session) if systems.intersection(c.systems)]
    if known is not None:
        return session.get_one(StatusIncident, known.status_incident_id), None
    incident = session.scalar(
        select(StatusIncident).where(StatusIncident.source_incident_id == published.incident_id)
    )
    at = published.at
    if incident is None:
        incident = StatusIncident(
            id=new_id(),
            kind=StatusKind.incident,
            source_incident_id=published.incident_id,
            created_at=at,
            component_ids=[],
        )
        session.add(incident)
    incident.name = _one_line(published.title)[:300] or "Incident"
    incident.status = phase
    incident.impact = impact
    incident.component_status = status
    incident.component_ids = sorted(set(incident.component_ids) | set(affected))
    incident.updated_at = at
    if phase is Phase.monitoring and incident.monitoring_at is None:
        incident.monitoring_at = at
    incident.resolved_at = at if phase is Phase.resolved else None
    update = StatusIncidentUpdate(
        id=new_id(),
        status_incident_id=incident.id,
        source_update_id=published.update_id,
        status=phase,
        body=published.body.replace("\x00", ""),
        component_status=ComponentStatus.operational if phase is Phase.resolved else status,
        created_at=at,
    )
    session.add(update)
    session.flush()
    return incident, update


def withdraw(session: Session, *, incident_id: int) -> bool:
    """Take an incident off the page, with its updates (it became restricted)."""
    row = session.scalar(
        select(StatusIncident).where(StatusIncident.source_incident_id == incident_id)
    )
    if row is None:
        return False
    session.execute(
        delete(StatusIncidentUpdate).where(StatusIncidentUpdate.status_incident_id == row.id)
    )
    session.delete(row)
    session.flush()
    return True


def add_maintenance(
    session: Session,
    *,
    component_ids: Sequence[str],
    start: datetime,
    end: datetime,
    title: str,
    body: str,
    now: datetime,
) -> StatusIncident:
    """A maintenance window: its components are under maintenance from `start` to `end`."""
    known = {c.id for c in components(session)}
    unknown = sorted(set(component_ids) - known)
    if unknown or not component_ids:
        raise InvalidInput(
            "A maintenance names the components it concerns, declared on the page: "
            f"{', '.join(unknown) or 'none given'} "
            f"{'is not one' if unknown else ''}; declared: {', '.join(sorted(known)) or 'none'}."
        )
    if end <= start:
        raise InvalidInput(f"A maintenance ends after it starts: {start} to {end} does not.")
    if not title.strip():
        raise InvalidInput("A maintenance needs a title that says what is done.")
    row = StatusIncident(
        id=new_id(),
        kind=StatusKind.maintenance,
        name=title.strip()[:300],
        status=Phase.scheduled,
        impact=Impact.maintenance,
        component_status=ComponentStatus.under_maintenance,
        component_ids=sorted(set(component_ids)),
        created_at=now,
        updated_at=now,
        scheduled_for=start,
        scheduled_until=end,
    )
    session.add(row)
    session.add(
        StatusIncidentUpdate(
            id=new_id(),
            status_incident_id=row.id,
            status=Phase.scheduled,
            body=body.strip() or title.strip(),
            component_status=ComponentStatus.under_maintenance,
            created_at=now,
        )
    )
    session.flush()
    return row


def maintenance_phase(row: StatusIncident, now: datetime) -> Phase:
    """Where a maintenance stands at `now`: scheduled, in progress, or completed."""
    assert row.scheduled_for is not None and row.scheduled_until is not None
    if now < row.scheduled_for:
        return Phase.scheduled
    return Phase.in_progress if now < row.scheduled_until else Phase.completed


def get_maintenance(session: Session, *, maintenance_id: str) -> StatusIncident:
    row = session.get(StatusIncident, maintenance_id)
    if row is None or row.kind is not StatusKind.maintenance:
        raise NotFound(
            f"No maintenance '{maintenance_id}'; `blastwall status maintenance list` shows them."
        )
    return row


def open_incidents(session: Session) -> list[StatusIncident]:
    """Unresolved status incidents, newest first (at most `LIST_LIMIT`)."""
    query = (
        select(StatusIncident)
        .where(StatusIncident.kind == StatusKind.incident, StatusIncident.resolved_at.is_(None))
        .order_by(StatusIncident.created_at.desc())
        .limit(LIST_LIMIT)
    )
    return list(session.scalars(query))


def recent_incidents(session: Session, *, now: datetime) -> list[StatusIncident]:
    """Status incidents of the last `HISTORY_DAYS` days, newest first (at most
    `LIST_LIMIT`)."""
    since = now - timedelta(days=HISTORY_DAYS)
    query = (
        select(StatusIncident)
        .where(StatusIncident.kind == StatusKind.incident, StatusIncident.updated_at >= since)
        .order_by(StatusIncident.created_at.desc())
        .limit(LIST_LIMIT)
    )
    return list(session.scalars(query))


def maintenances(session: Session, *, now: datetime) -> list[StatusIncident]:
    """Maintenances that end after `HISTORY_DAYS` days ago, latest start first (at most
    `LIST_LIMIT`)."""
    since = now - timedelta(days=HISTORY_DAYS)
    query = (
        select(StatusIncident)
        .where(
            StatusIncident.kind == StatusKind.maintenance,
            StatusIncident.scheduled_until >= since,
        )
        .order_by(StatusIncident.scheduled_for.desc())
        .limit(LIST_LIMIT)
    )
    return list(session.scalars(query))


def updates_of(session: Session, *, ids: Sequence[str]) -> dict[str, list[StatusIncidentUpdate]]:
    """The updates of these status incidents, newest first, by status incident."""
    found: dict[str, list[StatusIncidentUpdate]] = {i: [] for i in ids}
    if not ids:
        return found
    query = (
        select(StatusIncidentUpdate)
        .where(StatusIncidentUpdate.status_incident_id.in_(list(ids)))
        .order_by(StatusIncidentUpdate.created_at.desc(), StatusIncidentUpdate.id)
    )
    for row in session.scalars(query):
        found[row.status_incident_id].append(row)
    return found
