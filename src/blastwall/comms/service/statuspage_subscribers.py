"""The status page's subscribers: addresses (e-mail or webhook) that asked for its news, per
component or for all, each pending until the link sent to it is followed."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from blastwall.comms.models.statuspage import StatusComponent, StatusSubscriber, SubscriberKind
from blastwall.errors import InvalidInput, NotFound, Problem

__all__ = [
    "check_address",
    "confirm",
    "list_subscribers",
    "recipients",
    "subscribe",
    "unsubscribe",
]

EMAIL = re.compile(
    r"^[^@\s<>()\[\],;:\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}$"
)
PENDING_DAYS = 7
"""Days a subscription waits for its confirmation; then it is dropped."""
STALE_LINK = (
    "This link is unknown or was used already; subscribe again from the status page to get "
    "a fresh one."
)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _private(host: str) -> bool:
    """Whether a URL's host names this machine or a private network outright (a name that
    resolves to one is for the sender to refuse when it connects)."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not ip.is_global


def check_address(kind: SubscriberKind, address: str, *, private_webhooks: bool = False) -> str:
    """The address, checked for its kind: an e-mail address, or an http(s) URL, not of
    this machine or a private network unless `private_webhooks` (anyone may subscribe: the
    page must not be a way to make Blastwall call inside the network)."""
    address = address.strip()
    if kind is SubscriberKind.email:
        if len(address) > 254 or not EMAIL.match(address):
            raise InvalidInput(
                "The e-mail address is not one mail can be sent to.",
                [Problem("email", "give an address such as name@example.com")],
            )
        return address
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(address) > 2000:
        raise InvalidInput(
            "The webhook address is not an http(s) URL.",
            [Problem("webhook", "give a URL such as https://example.com/hooks/status")],
        )
    if not private_webhooks and _private(parts.hostname):
        raise InvalidInput(
            "The webhook address is on this machine or a private network, which this page "
            "does not call.",
            [Problem("webhook", "give a URL that is reachable from the internet")],
        )
    return address


def subscribe(
    session: Session,
    *,
    kind: SubscriberKind,
    address: str,
    component_ids: Sequence[str],
    now: datetime,
    private_webhooks: bool = False,
) -> tuple[StatusSubscriber, str]:
    """A pending subscriber, and the token of its confirmation link (kept only as a hash).
    Until the link is followed, the address gets nothing but the confirmation; following it
    replaces the address's earlier subscription. Subscriptions left unconfirmed for
    `PENDING_DAYS` are dropped."""
    address = check_address(kind, address, private_webhooks=private_webhooks)
    wanted = sorted(set(component_ids))
    if wanted:
        known = set(session.scalars(select(StatusComponent.id)))
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise InvalidInput(
                f"No component {', '.join(unknown)} on this page; leave component_ids out "
                "for every component, or name those of components.json.",
                [Problem("component_ids", "name components of the page")],
            )
    session.execute(
        delete(StatusSubscriber).where(
            StatusSubscriber.confirmed_at.is_(None),
            StatusSubscriber.created_at < now - timedelta(days=PENDING_DAYS),
        )
    )
    token = secrets.token_urlsafe(32)
    row = StatusSubscriber(
        kind=kind,
        address=address,
        component_ids=wanted,
        confirm_hash=_hash(token),
        unsubscribe_token=secrets.token_urlsafe(32),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, token


def confirm(session: Session, *, token: str, now: datetime) -> StatusSubscriber:
    """Confirm the subscriber whose confirmation link carries `token`: it replaces the
    address's other subscriptions of its kind."""
    row = session.scalar(
        select(StatusSubscriber).where(StatusSubscriber.confirm_hash == _hash(token))
    )
    if row is None:
        raise NotFound(STALE_LINK)
    if row.confirmed_at is None:
        session.execute(
            delete(StatusSubscriber).where(
                StatusSubscriber.kind == row.kind,
                StatusSubscriber.address == row.address,
                StatusSubscriber.id != row.id,
            )
        )
        row.confirmed_at = now
        session.flush()
    return row


def unsubscribe(session: Session, *, token: str) -> StatusSubscriber:
    row = session.scalar(
        select(StatusSubscriber).where(StatusSubscriber.unsubscribe_token == token)
    )
    if row is None:
        raise NotFound(STALE_LINK)
    session.delete(row)
    session.flush()
    return row


def recipients(session: Session, *, component_ids: Sequence[str]) -> list[StatusSubscriber]:
    """The confirmed subscribers to news of these components: those of every component,
    and those of one of them."""
    concerned = set(component_ids)
    query = select(StatusSubscriber).where(StatusSubscriber.confirmed_at.is_not(None))
    return [
        row
        for row in session.scalars(query.order_by(StatusSubscriber.id))
        if not row.component_ids or concerned.intersection(row.component_ids)
    ]


def list_subscribers(session: Session, *, limit: int) -> list[StatusSubscriber]:
    query = select(StatusSubscriber).order_by(StatusSubscriber.id.desc()).limit(limit)
    return list(session.scalars(query))
