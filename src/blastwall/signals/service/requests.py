"""Idempotency keys: a signal or report sent again with the same `Idempotency-Key` answers
the signal the first request created; the same key with another body is refused."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, Problem
from blastwall.signals.models import Signal, SignalRequest

REPLAY_WINDOW = timedelta(hours=24)
"""How long a request's `Idempotency-Key` is remembered; later, the key is new again."""
KEY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Idempotency:
    """A request's `Idempotency-Key`: the key, the route it was sent to (`signals`,
    `reports`) and the SHA-256 of its body as validated (so that JSON that differs only in
    spacing or member order is the same body)."""

    key: str
    route: str
    body_sha256: str

    @classmethod
    def of(cls, key: str, *, route: str, body: BaseModel) -> Idempotency:
        canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return cls(key=key, route=route, body_sha256=hashlib.sha256(canonical).hexdigest())


def replay(session: Session, *, idempotency: Idempotency, actor: Principal) -> Signal | None:
    """The signal an earlier request of the same principal with the same key created, within
    `REPLAY_WINDOW`; None when there was none. The same key with another body is refused."""
    actor.require(Permission.ingest if idempotency.route == "signals" else Permission.report)
    cutoff = utcnow() - REPLAY_WINDOW
    earlier = session.scalar(
        select(SignalRequest).where(
            SignalRequest.principal == actor.name,
            SignalRequest.route == idempotency.route,
            SignalRequest.idempotency_key == idempotency.key,
            SignalRequest.created_at >= cutoff,
        )
    )
    if earlier is None:
        return None
    if earlier.body_sha256 != idempotency.body_sha256:
        raise InvalidInput(
            f"This {KEY_HEADER} was sent before with another body. Use a new key for a new "
            "request, or send the same body to get the first request's answer.",
            problems=[Problem(f"header.{KEY_HEADER}", "reused with a different request body")],
        )
    signal = session.get(Signal, earlier.signal_id) if earlier.signal_id is not None else None
    if signal is None:  # pragma: no cover - the row goes with its signal (ON DELETE CASCADE)
        return None
    return signal


def remember(
    session: Session, idempotency: Idempotency, actor: Principal, now: datetime
) -> SignalRequest:
    """Record the key before the signal it creates. Two requests with the same key at once
    (PostgreSQL; SQLite takes one writer at a time): the second waits for the first to
    commit, then is answered 409 and, sent again, the first one's signal."""
    session.execute(delete(SignalRequest).where(SignalRequest.created_at < now - REPLAY_WINDOW))
    request = SignalRequest(
        principal=actor.name,
        route=idempotency.route,
        idempotency_key=idempotency.key,
        body_sha256=idempotency.body_sha256,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:
        raise Conflict(
            f"A request with this {KEY_HEADER} was being stored at the same time. Send it "
            "again: the answer will be that request's."
        ) from None
    return request
