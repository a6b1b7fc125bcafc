"""Noise rules: snoozes and maintenance windows that hold signals back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.correlation.models import NoiseRule
from blastwall.correlation.schemas import MaintenanceCreate, NoiseRuleOut, SnoozeCreate
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, NotFound, Problem
from blastwall.inventory.service import existing_system_ids
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.signals.models import Signal


def active_rules(session: Session, *, now: datetime) -> list[NoiseRule]:
    query = select(NoiseRule).where(
        NoiseRule.ended_at.is_(None), NoiseRule.starts_at <= now, NoiseRule.ends_at > now
    )
    return list(session.scalars(query.order_by(NoiseRule.id)))


def add_snooze(
    session: Session,
    *,
    data: SnoozeCreate,
    actor: Principal,
    now: datetime | None = None,
    candidate_id: int | None = None,
) -> NoiseRule:
    """Hold back the signals that match until the snooze expires (the caller commits)."""
    actor.require(Permission.write_incidents)
    now = now or utcnow()
    if data.until <= now:
        raise InvalidInput(
            "The snooze would expire before it starts.",
            [Problem("body.until", "give a time in the future")],
        )
    rule = NoiseRule(
        kind="snooze",
        match=data.match.model_dump(mode="json", exclude_none=True),
        reason=data.reason,
        starts_at=now,
        ends_at=data.until,
        candidate_id=candidate_id,
        created_by=actor.name,
        created_at=now,
    )
    session.add(rule)
    session.flush()
    return rule


def add_maintenance(session: Session, *, data: MaintenanceCreate, actor: Principal) -> NoiseRule:
    """Hold back a system's signals during a maintenance window (the caller commits)."""
    actor.require(Permission.record_changes)
    if not existing_system_ids(session, ids=[data.system]):
        raise InvalidInput(
            "Maintenance windows are for inventory systems.",
            [Problem("body.system", f"unknown system '{data.system}'; see GET /api/v1/systems")],
        )
    rule = NoiseRule(
        kind="maintenance",
        system_id=data.system,
        match={"system": data.system},
        reason=data.reason,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        created_by=actor.name,
        created_at=utcnow(),
    )
    session.add(rule)
    session.flush()
    return rule


def end_snoozes_of(session: Session, *, candidate_id: int, actor: Principal) -> list[int]:
    """End the snoozes a candidate's decline made (it is accepted or merged after all)."""
    now = utcnow()
    rules = session.scalars(
        select(NoiseRule).where(
            NoiseRule.candidate_id == candidate_id,
            NoiseRule.ended_at.is_(None),
            NoiseRule.ends_at > now,
        )
    )
    ended = []
    for rule in rules:
        rule.ended_at, rule.ended_by = now, actor.name
        ended.append(rule.id)
    return ended


def end_rule(session: Session, *, rule_id: int, actor: Principal) -> NoiseRule:
    """End a snooze or a maintenance window now (the caller commits)."""
    actor.require(Permission.write_incidents)
    rule = session.get(NoiseRule, rule_id)
    if rule is None:
        raise NotFound(f"No noise rule {rule_id}. `blastwall noise list` shows them.")
    if rule.ended_at is not None:
        raise Conflict(f"Noise rule {rule_id} was ended already, by {rule.ended_by}.")
    rule.ended_at = utcnow()
    rule.ended_by = actor.name
    return rule


def list_rules(
    session: Session,
    *,
    principal: Principal,
    limit: int,
    cursor: str | None = None,
    active: bool | None = None,
    kind: str | None = None,
) -> tuple[list[NoiseRule], str | None]:
    """Snoozes and maintenance windows, newest first."""
    principal.require(Permission.read)
    query = select(NoiseRule).order_by(NoiseRule.id.desc())
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(NoiseRule.id < after[0])
    if kind:
        query = query.where(NoiseRule.kind == kind)
    now = utcnow()
    in_force = (NoiseRule.ended_at.is_(None), NoiseRule.starts_at <= now, NoiseRule.ends_at > now)
    if active is True:
        query = query.where(*in_force)
    elif active is False:
        query = query.where(
            or_(
                NoiseRule.ended_at.is_not(None), NoiseRule.starts_at > now, NoiseRule.ends_at <= now
            )
        )
    return fetch_page(session, query, limit=limit)


def held_signals(
    session: Session, *, principal: Principal, rule_id: int, limit: int, cursor: str | None = None
) -> tuple[list[Signal], str | None]:
    """The signals a snooze or maintenance window held back, newest first."""
    principal.require(Permission.read)
    rule = session.get(NoiseRule, rule_id)
    if rule is None:
        raise NotFound(f"No noise rule {rule_id}. `blastwall noise list` shows them.")
    query = select(Signal).where(Signal.held_by == f"{rule.kind}:{rule.id}")
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Signal.id < after[0])
    return fetch_page(session, query.order_by(Signal.id.desc()), limit=limit)


def rule_out(rule: NoiseRule, now: datetime | None = None) -> NoiseRuleOut:
    now = now or utcnow()
    active = rule.ended_at is None and rule.starts_at <= now < rule.ends_at
    return NoiseRuleOut.model_validate(
        {
            **{c: getattr(rule, c) for c in NoiseRuleOut.model_fields if c != "active"},
            "active": active,
        }
    )
