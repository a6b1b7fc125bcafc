"""The versions of each system's prompts and models, and when each became current: recorded
when an inventory is applied and when a prompt or model change is posted. Containment pins
only versions a system has had, and a roll-back finds the one current before an incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.inventory.models import ComponentVersion
from blastwall.inventory.schemas import Model, Prompt, SystemSpec

KINDS = {"prompt": "prompts", "model": "models"}


@dataclass(frozen=True)
class Version:
    """One version of a prompt or model: what it is and since when it was current (None:
    declared by the inventory, never recorded)."""

    component_id: str
    version: str
    content_hash: str | None
    since: datetime | None
    source: str


def declared(spec: SystemSpec, kind: str) -> list[Prompt] | list[Model]:
    """The prompts (`kind` "prompt") or models ("model") the system declares."""
    return spec.components.prompts if kind == "prompt" else spec.components.models


def _hash(item: Prompt | Model) -> str | None:
    return item.content_hash if isinstance(item, Prompt) else None


def _latest(
    session: Session, *, system_id: str, kind: str, component_id: str
) -> ComponentVersion | None:
    query = (
        select(ComponentVersion)
        .where(
            ComponentVersion.system_id == system_id,
            ComponentVersion.kind == kind,
            ComponentVersion.component_id == component_id,
        )
        .order_by(ComponentVersion.since.desc(), ComponentVersion.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def record(
    session: Session,
    *,
    system_id: str,
    kind: str,
    component_id: str,
    version: str,
    content_hash: str | None,
    since: datetime,
    source: str,
    change_id: int | None = None,
) -> ComponentVersion | None:
    """Record that `version` became current at `since`, unless it is current already."""
    latest = _latest(session, system_id=system_id, kind=kind, component_id=component_id)
    if latest is not None and latest.version == version and latest.content_hash == content_hash:
        return None
    row = ComponentVersion(
        system_id=system_id,
        kind=kind,
        component_id=component_id,
        version=version,
        content_hash=content_hash,
        since=since,
        source=source,
        change_id=change_id,
    )
    session.add(row)
    session.flush()
    return row


def record_spec(session: Session, *, spec: SystemSpec, at: datetime, source: str) -> None:
    """Record the prompt and model versions an applied inventory declares."""
    for kind in KINDS:
        for item in declared(spec, kind):
            record(
                session,
                system_id=spec.id,
                kind=kind,
                component_id=item.id,
                version=item.version,
                content_hash=_hash(item),
                since=at,
                source=source,
            )


def known(session: Session, *, spec: SystemSpec, kind: str, component_id: str) -> list[Version]:
    """Every version the component has had, oldest first; the inventory's current one is
    among them even where it was never recorded (a system applied before versions were)."""
    rows = session.scalars(
        select(ComponentVersion)
        .where(
            ComponentVersion.system_id == spec.id,
            ComponentVersion.kind == kind,
            ComponentVersion.component_id == component_id,
        )
        .order_by(ComponentVersion.since, ComponentVersion.id)
    )
    found = [Version(r.component_id, r.version, r.content_hash, r.since, r.source) for r in rows]
    for item in declared(spec, kind):
        if item.id == component_id and not any(v.version == item.version for v in found):
            found.append(Version(component_id, item.version, _hash(item), None, "inventory"))
    return found


def current_at(versions: list[Version], at: datetime) -> Version | None:
    """The version that was current at `at` (the last to become current by then)."""
    before = [v for v in versions if v.since is not None and v.since <= at]
    return before[-1] if before else None
