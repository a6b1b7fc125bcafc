"""The only way into inventory storage: systems, their components and the change log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from blastwall.db import utcnow
from blastwall.errors import InvalidInput, NotFound, Problem
from blastwall.inventory import versions
from blastwall.inventory.loader import detection_problems
from blastwall.inventory.models import Change, System, SystemComponent
from blastwall.inventory.schemas import ApplyResult, ChangeIn, ChangeKind, SystemSpec
from blastwall.pagination import decode_cursor, fetch_page

_LIST_KEYS = {
    "models": "id",
    "prompts": "id",
    "data_sources": "id",
    "tools": "name",
    "vendors": "name",
    "contacts": "name",
}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a declaration; lists of named items are keyed by their name."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else key))
        return out or {prefix: {}}
    last = prefix.rsplit(".", 1)[-1]
    key_field = _LIST_KEYS.get(last)
    if (
        isinstance(value, list)
        and key_field
        and value
        and all(isinstance(v, dict) and key_field in v for v in value)
    ):
        out = {}
        for item in value:
            out.update(flatten(item, f"{prefix}[{item[key_field]}]"))
        return out
    return {prefix: value}


def diff_specs(before: dict[str, Any] | None, after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for every leaf that differs."""
    old = flatten(before or {}) if before else {}
    new = flatten(after)
    fields = sorted(set(old) | set(new))
    return [(f, old.get(f), new.get(f)) for f in fields if old.get(f) != new.get(f)]


def component_keys(spec: SystemSpec) -> list[tuple[str, str]]:
    """(kind, key) of each component, the keys by which systems share a component."""
    c = spec.components
    keys = [("model", f"{m.provider}/{m.name}@{m.version}") for m in c.models]
    keys += [("model_provider", m.provider) for m in c.models]
    keys += [("prompt", f"{p.id}@{p.version}") for p in c.prompts]
    keys += [("data_source", d.id) for d in c.data_sources]
    keys += [("tool", t.name) for t in c.tools]
    keys += [("vendor", v.name) for v in c.vendors]
    return sorted(set(keys))


def _dump(spec: SystemSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)


def keep_prompt_texts(session: Session, spec: SystemSpec) -> SystemSpec:
    """A spec imported from a BOM, with the stored text of each prompt whose id and hash are
    unchanged: BOMs carry a prompt's hash, never its text, and importing one must not erase
    the text that prompt-leak detection compares outputs with."""
    row = session.get(System, spec.id)
    if row is None or not spec.components.prompts:
        return spec
    stored = {(p.id, p.content_hash): p.content for p in row.parsed.components.prompts}
    prompts = [
        p.model_copy(update={"content": stored.get((p.id, p.content_hash))})
        if p.content is None and stored.get((p.id, p.content_hash))
        else p
        for p in spec.components.prompts
    ]
    components = spec.components.model_copy(update={"prompts": prompts})
    return spec.model_copy(update={"components": components})


def apply_specs(
    session: Session, *, specs: Iterable[SystemSpec], actor: str, source: str | None = None
) -> ApplyResult:
    """Create or update systems in one transaction, logging every difference."""
    specs = list(specs)
    known = set(session.scalars(select(System.id))) | {s.id for s in specs}
    problems = [
        Problem(f"{spec.id}.depends_on[{i}]", f"no system '{dep}' in the inventory")
        for spec in specs
        for i, dep in enumerate(spec.depends_on)
        if dep not in known
    ]
    if problems:
        raise InvalidInput("Unknown dependencies; nothing was applied.", problems)
    problems = [
        Problem(f"{spec.id}.detection.{p.location}", p.message)
        for spec in specs
        for p in detection_problems(spec)
    ]
    if problems:
        raise InvalidInput("Invalid detection settings; nothing was applied.", problems)
    result = ApplyResult()
    now = utcnow()
    for spec in specs:
        data = _dump(spec)
        row = session.get(System, spec.id)
        differences = diff_specs(row.spec if row else None, data)
        if row is None:
            row = System(id=spec.id, created_at=now)
            session.add(row)
            result.created.append(spec.id)
        elif not differences:
            result.unchanged.append(spec.id)
            continue
        else:
            result.updated.append(spec.id)
        row.name = spec.name
        row.type = spec.type
        row.owner_team = spec.owner.team
        row.risk_tier = spec.risk.tier
        row.eu_ai_act_high_risk = spec.risk.eu_ai_act_high_risk
        row.spec = data
        row.updated_at = now
        session.flush()
        session.execute(delete(SystemComponent).where(SystemComponent.system_id == spec.id))
        session.add_all(
            SystemComponent(system_id=spec.id, kind=kind, key=key)
            for kind, key in component_keys(spec)
        )
        versions.record_spec(session, spec=spec, at=now, source=f"inventory applied by {actor}")
        if spec.id in result.created:
            differences = [("(system)", None, data)]
        for field, old, new in differences:
            session.add(
                Change(
                    system_id=spec.id,
                    kind=ChangeKind.inventory,
                    summary="system registered" if field == "(system)" else f"{field} changed",
                    field=None if field == "(system)" else field,
                    before=old,
                    after=new,
                    actor=actor,
                    source=source,
                    at=now,
                    recorded_at=now,
                )
            )
        result.changes += len(differences)
    session.flush()
    return result


def get_system(session: Session, *, system_id: str) -> System:
    row = session.get(System, system_id)
    if row is None:
        raise NotFound(f"No AI system '{system_id}'. `blastwall inventory list` shows the ids.")
    return row


def list_systems(
    session: Session, *, limit: int, cursor: str | None = None, type: str | None = None
) -> tuple[list[System], str | None]:
    query = select(System).order_by(System.id)
    after = decode_cursor(cursor, types=(str,))
    if after:
        query = query.where(System.id > after[0])
    if type:
        query = query.where(System.type == type)
    return fetch_page(session, query, limit=limit)


def systems_sharing(session: Session, *, kind: str, key: str) -> list[str]:
    """Ids of the systems that declare the component (kind, key)."""
    query = select(SystemComponent.system_id).where(
        SystemComponent.kind == kind, SystemComponent.key == key
    )
    return sorted(set(session.scalars(query)))


def existing_system_ids(session: Session, *, ids: Iterable[str]) -> set[str]:
    wanted = set(ids)
    if not wanted:
        return set()
    return set(session.scalars(select(System.id).where(System.id.in_(wanted))))


def _changed_version(system: System, change: ChangeIn) -> tuple[str, str] | None:
    """(kind, component id) of the prompt or model whose version `change` records, if it
    names one; InvalidInput if it names a component the system does not declare."""
    if change.version is None:
        return None
    kinds = {ChangeKind.prompt_change: "prompt", ChangeKind.model_change: "model"}
    kind = kinds.get(change.kind)
    if kind is None:
        raise InvalidInput(
            "Only a prompt_change or model_change carries a version.",
            [Problem("body.version", "leave it out, or set kind to prompt_change/model_change")],
        )
    declared = [c.id for c in versions.declared(system.parsed, kind)]
    component = change.component
    if component is None:
        if len(declared) != 1:
            raise InvalidInput(
                f"{system.id} declares {len(declared)} {kind}s; say which one changed.",
                [Problem("body.component", f"name one of: {', '.join(declared) or '(none)'}")],
            )
        component = declared[0]
    elif component not in declared:
        raise InvalidInput(
            f"'{component}' is not a {kind} of {system.id} in the inventory.",
            [Problem("body.component", f"name one of: {', '.join(declared) or '(none)'}")],
        )
    return kind, component


def record_change(session: Session, *, change: ChangeIn, actor: str) -> Change:
    system = get_system(session, system_id=change.system_id)
    changed = _changed_version(system, change)
    now = utcnow()
    row = Change(
        system_id=change.system_id,
        kind=change.kind,
        summary=change.summary,
        field=change.field,
        before=change.before,
        after=change.after,
        actor=actor,
        source=change.source,
        ref=change.ref,
        at=change.at or now,
        recorded_at=now,
    )
    session.add(row)
    if changed is not None:
        assert change.version is not None
        session.flush()
        versions.record(
            session,
            system_id=system.id,
            kind=changed[0],
            component_id=changed[1],
            version=change.version,
            content_hash=change.content_hash,
            since=row.at,
            source=f"change {row.id} by {actor}",
            change_id=row.id,
        )
    session.flush()
    return row


def list_changes(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    system_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
) -> tuple[list[Change], str | None]:
    """Changes newest first, filtered by system, kind and time range [since, until)."""
    query = select(Change).order_by(Change.at.desc(), Change.id.desc())
    if system_id:
        query = query.where(Change.system_id == system_id)
    if kind:
        query = query.where(Change.kind == kind)
    if since:
        query = query.where(Change.at >= since)
    if until:
        query = query.where(Change.at < until)
    after = decode_cursor(cursor, types=(datetime, int))
    if after:
        last_at, last_id = after
        query = query.where(
            or_(Change.at < last_at, and_(Change.at == last_at, Change.id < last_id))
        )
    return fetch_page(session, query, limit=limit, key=lambda c: [c.at.isoformat(), c.id])
