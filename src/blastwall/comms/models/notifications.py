"""Notification tables: the channels (a notifier's configuration, in a row), the outbox of
messages to deliver, and each try's receipt."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow

__all__ = ["Attempt", "Channel", "OutboxMessage", "OutboxState"]


class OutboxState(StrEnum):
    pending = "pending"  # to send, now or at next_attempt_at
    delivered = "delivered"
    dead = "dead"  # every try failed: the dead-letter list, until resent


class Channel(Base):
    """Where notifications go: a kind of notifier and its settings. `secrets` holds the
    settings the notifier names secret (never in a list answer); `public` channels reach
    people outside the responders, and never carry a restricted incident."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    secrets: Mapped[dict[str, Any]] = mapped_column(JSONType)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxMessage(Base):
    """A message to deliver on one channel, written in the transaction of what it tells of.
    `key` is its idempotency key: one row per key. The delivery loop claims a row by setting
    `lease_until`; a row whose lease ran out (its process died mid-send) is claimed again."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        Index("ix_notification_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(500), unique=True)
    channel: Mapped[str] = mapped_column(String(100), index=True)
    event: Mapped[str] = mapped_column(String(40))
    incident_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[OutboxState] = mapped_column(enum_type(OutboxState, 20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Attempt(Base):
    """One try to deliver an outbox message, and its receipt."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("notification_outbox.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(100))
    code: Mapped[int | None] = mapped_column(Integer, default=None)
    detail: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
