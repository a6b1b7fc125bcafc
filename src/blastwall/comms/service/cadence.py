"""The cadence of status updates in storage: when each audience last heard, the snoozes of
a cadence, and the reminders fired (each key once, ever)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blastwall.comms.models.updates import (
    CadenceSnooze,
    StatusUpdate,
    UpdateReminder,
    UpdateState,
)

__all__ = [
    "active_snooze",
    "add_snooze",
    "last_heard",
    "record_reminder",
    "reminder_key",
]


def reminder_key(incident_id: int, audience: str, due_at: datetime, level: str) -> str:
    """The key of a reminder: the same reminder has the same key in every process."""
    return f"update-reminder:{incident_id}:{audience}:{due_at.strftime('%Y%m%dT%H%M%SZ')}:{level}"


def last_heard(session: Session, *, incident_ids: list[int]) -> dict[tuple[int, str], StatusUpdate]:
    """The last published update of each incident to each audience."""
    if not incident_ids:
        return {}
    latest = (
        select(func.max(StatusUpdate.id))
        .where(
            StatusUpdate.incident_id.in_(incident_ids),
            StatusUpdate.state == UpdateState.published,
        )
        .group_by(StatusUpdate.incident_id, StatusUpdate.audience)
    )
    rows = session.scalars(select(StatusUpdate).where(StatusUpdate.id.in_(latest)))
    return {(r.incident_id, r.audience): r for r in rows}


def active_snooze(
    session: Session, *, incident_id: int, audience: str, now: datetime
) -> CadenceSnooze | None:
    """The snooze in force now that ends last, if any."""
    query = (
        select(CadenceSnooze)
        .where(
            CadenceSnooze.incident_id == incident_id,
            CadenceSnooze.audience == audience,
            CadenceSnooze.until > now,
        )
        .order_by(CadenceSnooze.until.desc())
        .limit(1)
    )
    return session.scalar(query)


def add_snooze(
    session: Session,
    *,
    incident_id: int,
    audience: str,
    until: datetime,
    reason: str,
    by: str,
    now: datetime,
) -> CadenceSnooze:
    row = CadenceSnooze(
        incident_id=incident_id,
        audience=audience,
        until=until,
        reason=reason,
        snoozed_by=by,
        snoozed_at=now,
    )
    session.add(row)
    session.flush()
    return row


def record_reminder(
    session: Session,
    *,
    key: str,
    incident_id: int,
    audience: str,
    level: str,
    recipient: str,
    due_at: datetime,
    now: datetime,
) -> bool:
    """Record a reminder as fired; False when its key was fired already (by this process or
    another one at the same moment)."""
    if session.scalar(select(UpdateReminder.id).where(UpdateReminder.key == key)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                UpdateReminder(
                    key=key,
                    incident_id=incident_id,
                    audience=audience,
                    level=level,
                    recipient=recipient,
                    due_at=due_at,
                    fired_at=now,
                )
            )
    except IntegrityError:
        return False
    return True
