"""Notification channels: a notifier's kind and settings, in a row. Secrets (the settings
the notifier names secret) are kept apart and never leave in a list answer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.comms.models.notifications import Channel
from blastwall.comms.notifiers.base import ChannelConfig
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, NotFound, Problem
from blastwall.plugins import Notifier

__all__ = [
    "add_channel",
    "channel_config",
    "enabled_channels",
    "get_channel",
    "list_channels",
    "remove_channel",
    "set_enabled",
    "shown_settings",
]

SECRET_SHOWN = "***"


def _notifier(notifiers: Mapping[str, Notifier], kind: str) -> Notifier:
    notifier = notifiers.get(kind)
    if notifier is None:
        raise InvalidInput(
            f"No notifier of kind '{kind}'.",
            [Problem("kind", f"choose one of {', '.join(sorted(notifiers))}")],
        )
    return notifier


def add_channel(
    session: Session,
    *,
    name: str,
    kind: str,
    settings: Mapping[str, Any],
    notifiers: Mapping[str, Notifier],
    actor: str,
    public: bool = False,
    enabled: bool = True,
    replace: bool = False,
) -> Channel:
    """Add a channel, its settings checked by its notifier; `replace`: change the one of
    that name instead of refusing (409)."""
    notifier = _notifier(notifiers, kind)
    problems = notifier.check(settings)
    if problems:
        raise InvalidInput(
            f"The settings of a {kind} channel are not right.",
            [Problem("settings", p) for p in problems],
        )
    row = session.scalar(select(Channel).where(Channel.name == name))
    if row is not None and not replace:
        raise Conflict(
            f"A channel named '{name}' exists. Remove it first, or replace it "
            '(`--replace`, or `"replace": true`).'
        )
    plain = {k: v for k, v in settings.items() if k not in notifier.secret_keys}
    secret = {k: v for k, v in settings.items() if k in notifier.secret_keys}
    now = utcnow()
    if row is None:
        row = Channel(name=name, created_by=actor, created_at=now)
        session.add(row)
    row.kind = kind
    row.settings = plain
    row.secrets = secret
    row.public = public
    row.enabled = enabled
    row.updated_at = now
    session.flush()
    return row


def list_channels(session: Session) -> list[Channel]:
    return list(session.scalars(select(Channel).order_by(Channel.name)))


def get_channel(session: Session, *, name: str) -> Channel:
    row = session.scalar(select(Channel).where(Channel.name == name))
    if row is None:
        raise NotFound(
            f"No notification channel named '{name}'. `blastwall notify channel list` lists them."
        )
    return row


def remove_channel(session: Session, *, name: str) -> None:
    """Remove a channel; its messages stay in the outbox (and fail, if still to send)."""
    session.delete(get_channel(session, name=name))
    session.flush()


def set_enabled(session: Session, *, name: str, enabled: bool) -> Channel:
    row = get_channel(session, name=name)
    row.enabled = enabled
    row.updated_at = utcnow()
    session.flush()
    return row


def enabled_channels(session: Session, *, names: Iterable[str]) -> list[Channel]:
    """The enabled channels of these names that exist, by name."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    query = select(Channel).where(Channel.name.in_(wanted), Channel.enabled.is_(True))
    return list(session.scalars(query.order_by(Channel.name)))


def channel_config(row: Channel) -> ChannelConfig:
    """The channel as its notifier needs it: with its secrets."""
    return ChannelConfig(
        name=row.name, kind=row.kind, settings={**row.settings, **row.secrets}, public=row.public
    )


def shown_settings(row: Channel) -> dict[str, Any]:
    """The settings as an answer shows them: each secret as `***`."""
    return {**row.settings, **dict.fromkeys(row.secrets, SECRET_SHOWN)}
