"""API tokens (only the SHA-256 of a token is stored) and the web interface's sessions and
actions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.auth.roles import Role
from blastwall.db import Base, UTCDateTime, enum_type, utcnow


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[Role] = mapped_column(enum_type(Role, 32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class UiSession(Base):
    """A signed-in browser: the web interface's session cookie stands for a token, whose
    principal and role it acts as. Only the SHA-256 of the cookie is stored; revoking the
    token ends its sessions."""

    __tablename__ = "ui_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class UiRequest(Base):
    """A web interface action done once: its idempotency key, per principal, and where it
    led. A form sent twice (a double click, a retry on a slow link) answers the first
    outcome instead of acting again."""

    __tablename__ = "ui_requests"
    __table_args__ = (UniqueConstraint("principal", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    principal: Mapped[str] = mapped_column(String(200))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
