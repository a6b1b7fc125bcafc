"""Writing and reading the audit log."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.audit.models import AuditEntry
from blastwall.db import utcnow
from blastwall.pagination import decode_cursor, fetch_page


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str | None
    method: str
    route: str
    path: str
    object: str | None
    status_code: int


def record(
    session: Session,
    *,
    actor: str,
    role: str | None,
    method: str,
    route: str,
    path: str,
    object: str | None,
    status_code: int,
) -> None:
    session.add(
        AuditEntry(
            at=utcnow(),
            actor=actor[:200],
            role=role,
            method=method,
            route=route[:300],
            path=path[:2000],
            object=object[:300] if object else None,
            status_code=status_code,
        )
    )


def list_entries(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    actor: str | None = None,
    object: str | None = None,
) -> tuple[list[AuditEntry], str | None]:
    """Audit entries, newest first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(AuditEntry.id < after[0])
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if object:
        query = query.where(AuditEntry.object == object)
    return fetch_page(session, query, limit=limit)
