"""Principals: who a token acts for, a person or a service, one name each. Every token
belongs to one principal (its name); access to restricted incidents, grants and roles on
incidents follow the principal, so a name that no token and no command line user has is
nobody, and a principal's name is not taken by a new token by accident."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.models import ApiToken

#: People at the server's command line act as `cli:<user>` and have no token.
CLI_PREFIX = "cli:"


def exists(session: Session, name: str) -> bool:
    """Whether `name` is a principal: an active token's name, or a person at the server's
    command line (`cli:<user>`)."""
    if name.startswith(CLI_PREFIX) and len(name) > len(CLI_PREFIX):
        return True
    active = select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
    return session.scalar(active.limit(1)) is not None


def unknown(session: Session, names: list[str]) -> list[str]:
    """The names among `names` that are no principal."""
    return [name for name in dict.fromkeys(names) if not exists(session, name)]


def active_roles(session: Session, name: str) -> set[str]:
    """The roles of the principal's active tokens (empty: no active token)."""
    query = select(ApiToken.role).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
    return set(session.scalars(query))
