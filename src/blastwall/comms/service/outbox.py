"""The notification outbox: one row per message and channel, written in the transaction of
what it tells of, claimed with a lease by the delivery loop, and each try's receipt.

Enqueueing is idempotent: a message whose key is in the outbox already is not added again.
A claim is an UPDATE that only takes a row no lease holds (or whose lease ran out), so two
processes never send the same row at once, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from blastwall.comms.models.notifications import Attempt, OutboxMessage, OutboxState
from blastwall.comms.notifiers.base import Message, Receipt
from blastwall.db import after_commit
from blastwall.errors import Conflict, NotFound
from blastwall.pagination import decode_cursor, fetch_page

__all__ = [
    "DUE",
    "attempts_of",
    "claim_due",
    "enqueue",
    "get_message",
    "list_messages",
    "message_of",
    "record_attempt",
    "resend",
]

DUE = threading.Event()
"""Set once a transaction that enqueued messages commits: the delivery loop wakes at once
instead of at its next look."""


def _body(message: Message) -> dict[str, Any]:
    body = asdict(message)
    body["created_at"] = message.created_at.isoformat()
    body["facts"] = [list(f) for f in message.facts]
    body["data"] = dict(message.data)
    return body


def message_of(row: OutboxMessage) -> Message:
    """The message an outbox row holds."""
    body = dict(row.body)
    body["created_at"] = datetime.fromisoformat(body["created_at"])
    body["facts"] = tuple((str(a), str(b)) for a, b in body.get("facts", ()))
    return Message(**body)


def enqueue(session: Session, *, message: Message, channel: str, now: datetime) -> bool:
    """Put `message` in the outbox for `channel`, due at once; False (and nothing added)
    when a message with its key is there already."""
    values = {
        "key": message.key,
        "channel": channel,
        "event": message.event,
        "incident_id": message.incident_id,
        "subject": message.subject[:500],
        "body": _body(message),
        "state": OutboxState.pending,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["key"])
    )
    added = session.execute(statement.returning(OutboxMessage.id)).first() is not None
    if added:
        after_commit(session, DUE.set)
    return added


def _free(now: datetime) -> ColumnElement[bool]:
    """No live lease holds the message."""
    return or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now)


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        OutboxMessage.state == OutboxState.pending,
        OutboxMessage.next_attempt_at <= now,
        _free(now),
    )


def any_due(session: Session, *, now: datetime) -> bool:
    """Whether a message is due and free: a read, so that an idle loop never asks for the
    write lock."""
    return bool(session.scalar(select(exists().where(_due(now)))))


def claim_due(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[OutboxMessage]:
    """Lease up to `limit` messages that are due and that no live lease holds."""
    free = _free(now)
    due = (
        select(OutboxMessage.id)
        .where(_due(now))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    candidates = list(session.scalars(due))
    if not candidates:
        return []
    claimed = session.scalars(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(candidates),
            OutboxMessage.state == OutboxState.pending,
            free,
        )
        .values(lease_until=lease_until)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        return []
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(claimed))
        .order_by(OutboxMessage.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


def record_attempt(
    session: Session,
    *,
    message_id: int,
    receipt: Receipt,
    at: datetime,
    seconds: float,
    max_attempts: int,
    backoff: Callable[[int], float],
) -> OutboxMessage:
    """Record one try and its receipt; the message is delivered, due again after
    `backoff(tries so far)` seconds, or dead after its `max_attempts`th failed try."""
    row = session.get(OutboxMessage, message_id, populate_existing=True)
    if row is None:
        raise NotFound(f"No outbox message {message_id}.")
    session.add(
        Attempt(
            message_id=row.id,
            at=at,
            ok=receipt.ok,
            status=receipt.status[:100],
            code=receipt.code,
            detail=receipt.detail,
            seconds=seconds,
        )
    )
    row.attempts += 1
    row.lease_until = None
    if receipt.ok:
        row.state = OutboxState.delivered
        row.delivered_at = at
        row.last_error = ""
    else:
        row.last_error = f"{receipt.status}: {receipt.detail}".strip(": ")[:2000]
        if row.attempts >= max_attempts:
            row.state = OutboxState.dead
        else:
            row.next_attempt_at = at + timedelta(seconds=backoff(row.attempts))
    session.flush()
    return row


def _listing(state: OutboxState | None, incident_id: int | None) -> Select[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if state is not None:
        query = query.where(OutboxMessage.state == state)
    if incident_id is not None:
        query = query.where(OutboxMessage.incident_id == incident_id)
    return query


def list_messages(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    state: OutboxState | None = None,
    incident_id: int | None = None,
) -> tuple[list[OutboxMessage], str | None]:
    """Outbox messages, newest first."""
    query = _listing(state, incident_id)
    after = decode_cursor(cursor, types=(int,))
    if after is not None:
        query = query.where(OutboxMessage.id < after[0])
    return fetch_page(session, query, limit=limit)


def get_message(session: Session, *, message_id: int) -> OutboxMessage:
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFound(f"No notification {message_id}. `blastwall notifications` lists them.")
    return row


def attempts_of(session: Session, *, message_id: int) -> list[Attempt]:
    query = select(Attempt).where(Attempt.message_id == message_id).order_by(Attempt.id)
    return list(session.scalars(query))


def resend(session: Session, *, message_id: int, now: datetime) -> OutboxMessage:
    """Send a message again, with every try before it: a dead one, or a delivered one (a
    receiver lost it). The receipts of its earlier tries stay."""
    row = get_message(session, message_id=message_id)
    if row.state == OutboxState.pending:
        raise Conflict(
            f"Notification {message_id} is still being sent (try {row.attempts + 1} is due at "
            f"{row.next_attempt_at.isoformat()}); resend it once it is delivered or dead."
        )
    row.state = OutboxState.pending
    row.attempts = 0
    row.next_attempt_at = now
    row.lease_until = None
    row.delivered_at = None
    session.flush()
    after_commit(session, DUE.set)
    return row
