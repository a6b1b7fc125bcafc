"""The web interface's sessions: a personal token exchanged for a session cookie, and the
actions a browser does once per idempotency key.

A session acts as its token's principal with its token's role; it ends on sign-out, at its
expiry, or when its token is revoked. Only the SHA-256 of the cookie is stored. Each session
has its own CSRF secret, which every form of the interface carries."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth import service as token_service
from blastwall.auth.models import ApiToken, UiRequest, UiSession
from blastwall.auth.roles import Principal
from blastwall.db import utcnow
from blastwall.errors import AuthenticationRequired, InvalidInput, PermissionDenied


@dataclass(frozen=True)
class SignedIn:
    """A browser's session: who it acts as, its row's id and its CSRF secret."""

    principal: Principal
    session_id: int
    csrf: str


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def sign_in(session: Session, *, token: str, lifetime: timedelta) -> tuple[SignedIn, str]:
    """Open a session for the holder of `token`; answer it and the cookie's value (shown to
    the browser only)."""
    principal = token_service.authenticate(session, token=token.strip())
    assert principal.token_id is not None
    cookie = secrets.token_urlsafe(32)
    row = UiSession(
        session_hash=_hash(cookie),
        token_id=principal.token_id,
        csrf=secrets.token_urlsafe(32),
        expires_at=utcnow() + lifetime,
    )
    session.add(row)
    session.flush()
    return SignedIn(principal, row.id, row.csrf), cookie


def resolve(session: Session, *, cookie: str | None) -> SignedIn:
    """The session a cookie stands for, or AuthenticationRequired: no cookie, an unknown,
    ended or expired session, or a revoked token."""
    if not cookie:
        raise AuthenticationRequired("Sign in with your personal token.")
    found = session.execute(
        select(UiSession, ApiToken)
        .join(ApiToken, ApiToken.id == UiSession.token_id)
        .where(UiSession.session_hash == _hash(cookie))
    ).first()
    if found is None:
        raise AuthenticationRequired("Your session is unknown; sign in again.")
    row, token = found
    if row.ended_at is not None:
        raise AuthenticationRequired("You signed out; sign in again.")
    if row.expires_at <= utcnow():
        raise AuthenticationRequired("Your session expired; sign in again.")
    if token.revoked_at is not None:
        raise AuthenticationRequired("Your token was revoked; sign in with a valid one.")
    return SignedIn(
        Principal(name=token.name, role=token.role, token_id=token.id), row.id, row.csrf
    )


def sign_out(session: Session, *, session_id: int) -> None:
    row = session.get(UiSession, session_id)
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()


def check_csrf(signed_in: SignedIn, presented: str | None) -> None:
    """Refuse a form that does not carry the session's CSRF secret."""
    if not presented or not secrets.compare_digest(presented, signed_in.csrf):
        raise CsrfRefused(
            "The form did not carry this session's CSRF token (a stale page, or a request "
            "from another site). Reload the page and try again."
        )


class CsrfRefused(PermissionDenied):
    title = "CSRF token missing or wrong"


KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def once(
    session: Session, *, principal: Principal, key: str, route: str, act: Callable[[], str]
) -> str:
    """Do `act` once per principal and idempotency `key`; answer where it led (a URL). A
    repeat answers the first outcome without acting again."""
    if not key or len(key) > 64 or not set(key) <= KEY_CHARS:
        raise InvalidInput(
            "The form's idempotency key is missing or malformed; reload the page and retry."
        )
    done = session.scalar(
        select(UiRequest.outcome).where(
            UiRequest.principal == principal.name, UiRequest.idempotency_key == key
        )
    )
    if done is not None:
        return done
    outcome = act()
    session.add(
        UiRequest(principal=principal.name, idempotency_key=key, route=route, outcome=outcome)
    )
    session.flush()
    return outcome
