"""Issuing, listing, revoking and checking API tokens."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth import principals
from blastwall.auth.models import ApiToken
from blastwall.auth.roles import Principal, Role
from blastwall.db import revoke, utcnow
from blastwall.errors import AuthenticationRequired, Conflict
from blastwall.pagination import decode_cursor, fetch_page

TOKEN_PREFIX = "bw_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session,
    *,
    name: str,
    role: Role,
    created_by: str,
    replace: bool = False,
    add: bool = False,
) -> tuple[ApiToken, str]:
    """Issue a token for the principal `name`; answer its row and the secret, which is shown
    only this once. A principal that has an active token keeps it unless `replace` (rotate:
    the old ones are revoked) or `add` (a further token of the same principal):
    a new token never takes an existing person's name, and their access, by accident."""
    roles = principals.active_roles(session, name)
    if roles and not replace and not add:
        raise Conflict(
            f"'{name}' is a principal with an active token (role {', '.join(sorted(roles))}); "
            "a token acts as its principal, with its access to restricted incidents. "
            "Rotate its token with replace (CLI --replace), give the same principal a "
            "further token with add (CLI --add), or choose another name."
        )
    if replace:
        for old in session.scalars(
            select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        ):
            old.revoked_at = utcnow()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        role=role,
        token_hash=hash_token(secret),
        prefix=secret[:10],
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return row, secret


def list_tokens(
    session: Session, *, include_revoked: bool = False, limit: int = 500, cursor: str | None = None
) -> tuple[list[ApiToken], str | None]:
    """Tokens oldest first."""
    query = select(ApiToken).order_by(ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(ApiToken.id > after[0])
    return fetch_page(session, query, limit=limit)


def revoke_token(session: Session, *, token_id: int) -> ApiToken:
    return revoke(
        session,
        ApiToken,
        token_id,
        missing=f"No token with id {token_id}. `blastwall token list` shows the ids.",
    )


def authenticate(session: Session, *, token: str | None) -> Principal:
    """The principal a bearer token stands for, or AuthenticationRequired."""
    if not token:
        raise AuthenticationRequired(
            "This endpoint needs a token: send 'Authorization: Bearer <token>'. "
            "Create one with `blastwall token create --name NAME --role ROLE`."
        )
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        raise AuthenticationRequired(
            "The token is unknown or revoked. Ask an admin for a valid token."
        )
    return Principal(name=row.name, role=row.role, token_id=row.id)
