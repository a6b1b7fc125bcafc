"""`blastwall notify ...` (channels, a test message) and `blastwall notifications ...` (the
outbox: list, show, resend, deliver)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from blastwall.comms.delivery import DeliveryConfig, deliver_due, send_test
from blastwall.comms.models.notifications import OutboxState
from blastwall.comms.service import notifications as service
from blastwall.comms.service import outbox
from blastwall.console import (
    audit,
    open_database,
    operator,
    out,
    print_json,
    print_table,
    session_scope,
)
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, Problem
from blastwall.plugins import notifiers
from blastwall.settings import get_settings

__all__ = ["notifications_app", "notify_app"]

notify_app = typer.Typer(help="Notification channels, and test messages.", no_args_is_help=True)
channel_app = typer.Typer(help="Notification channels: add, list, remove.", no_args_is_help=True)
notify_app.add_typer(channel_app, name="channel")
notifications_app = typer.Typer(
    help="The notification outbox: what was sent, what is still to send, the dead letters."
)


def _pairs(values: list[str], option: str) -> dict[str, Any]:
    """KEY=VALUE options as settings; a VALUE that reads as JSON (587, true, ["a"]) is that."""
    found: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise InvalidInput(
                f"{option} takes KEY=VALUE.", [Problem(option, f"'{value}' has no '='")]
            )
        try:
            found[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            found[key] = raw
    return found


@channel_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The channel's name, e.g. responders.")],
    kind: Annotated[str, typer.Argument(help="email, webhook, slack, teams, pagerduty, apprise.")],
    set_: Annotated[list[str], typer.Option("--set", help="A setting, KEY=VALUE (repeat).")] = [],  # noqa: B006 - Typer's way of a repeated option
    secret: Annotated[
        list[str],
        typer.Option("--secret", help="A secret setting, KEY=VALUE (kept out of the audit log)."),
    ] = [],  # noqa: B006
    public: Annotated[
        bool, typer.Option(help="Reaches people beyond the responders: never restricted ones.")
    ] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it disabled.")] = False,
    replace: Annotated[bool, typer.Option(help="Replace the channel of that name.")] = False,
) -> None:
    """Add a notification channel; its notifier checks the settings."""
    found = notifiers()
    plain = _pairs(set_, "--set")
    notifier = found.get(kind)
    leaked = sorted(set(plain) & notifier.secret_keys) if notifier else []
    if leaked:
        raise InvalidInput(
            f"{', '.join(leaked)} of a {kind} channel is a secret.",
            [Problem("--set", f"give {k} with --secret {k}=..., not --set") for k in leaked],
        )
    with session_scope() as session:
        row = service.add_channel(
            session,
            name=name,
            kind=kind,
            settings={**plain, **_pairs(secret, "--secret")},
            notifiers=found,
            actor=operator().name,
            public=public,
            enabled=not disabled,
            replace=replace,
        )
        audit(session, command="notify channel add", object=f"channel:{row.name}")
    out.print(f"channel {row.name} ({row.kind}) {'replaced' if replace else 'added'}")


@channel_app.command("list")
def list_(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the channels, their secrets shown as ***."""
    with session_scope() as session:
        rows = [
            {
                "name": r.name,
                "kind": r.kind,
                "settings": service.shown_settings(r),
                "public": r.public,
                "enabled": r.enabled,
            }
            for r in service.list_channels(session)
        ]
    if json:
        print_json(rows)
        return
    print_table(
        ["name", "kind", "public", "enabled", "settings"],
        [
            (r["name"], r["kind"], r["public"], r["enabled"], orjson.dumps(r["settings"]).decode())
            for r in rows
        ],
    )


@channel_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The channel's name.")]) -> None:
    """Remove a channel."""
    with session_scope() as session:
        service.remove_channel(session, name=name)
        audit(session, command="notify channel remove", object=f"channel:{name}")
    out.print(f"channel {name} removed")


@notify_app.command("test")
def test(name: Annotated[str, typer.Argument(help="The channel's name.")]) -> None:
    """Send a test message on a channel now, and print the receipt."""
    db = open_database()
    try:
        receipt = send_test(db, name=name, actor=operator().name)
    finally:
        db.engine.dispose()
    out.print(f"{'delivered' if receipt.ok else 'FAILED'}: {receipt.status}")
    if receipt.detail:
        out.print(receipt.detail)
    if not receipt.ok:
        raise typer.Exit(1)


@notifications_app.callback(invoke_without_command=True)
def listing(
    ctx: typer.Context,
    dead: Annotated[bool, typer.Option("--dead", help="Only the dead-letter list.")] = False,
    state: Annotated[OutboxState | None, typer.Option(help="Only this state.")] = None,
    incident: Annotated[int | None, typer.Option(help="Only this incident's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the outbox, newest first (`show`, `resend`, `deliver` below)."""
    if ctx.invoked_subcommand is not None:
        return
    with session_scope() as session:
        rows, _ = outbox.list_messages(
            session,
            limit=limit,
            state=OutboxState.dead if dead else state,
            incident_id=incident,
        )
        items = [
            {
                "id": r.id,
                "channel": r.channel,
                "event": r.event,
                "incident": r.incident_id,
                "state": r.state.value,
                "attempts": r.attempts,
                "subject": r.subject,
                "last_error": r.last_error,
            }
            for r in rows
        ]
    if json:
        print_json(items)
        return
    print_table(
        ["id", "channel", "event", "incident", "state", "tries", "subject", "last error"],
        [tuple(i.values()) for i in items],
    )


@notifications_app.command("show")
def show(notification_id: Annotated[int, typer.Argument(help="The message's id.")]) -> None:
    """A message and the receipt of each try."""
    with session_scope() as session:
        row = outbox.get_message(session, message_id=notification_id)
        message = outbox.message_of(row)
        tries = outbox.attempts_of(session, message_id=row.id)
        out.print(f"{row.id} · {row.channel} · {row.event} · {row.state.value} · {row.key}")
        out.print(row.subject)
        out.print(message.text)
        print_table(
            ["at", "ok", "status", "seconds", "detail"],
            [(a.at, a.ok, a.status, f"{a.seconds:.3f}", a.detail) for a in tries],
        )


@notifications_app.command("resend")
def resend(notification_id: Annotated[int, typer.Argument(help="The message's id.")]) -> None:
    """Send a dead (or delivered) message again."""
    with session_scope() as session:
        row = outbox.resend(session, message_id=notification_id, now=utcnow())
        audit(session, command="notifications resend", object=f"notification:{row.id}")
    out.print(f"notification {row.id} is due again on {row.channel}")


@notifications_app.command("deliver")
def deliver() -> None:
    """Send what is due now, in one pass (the server's loop does it on its own)."""
    db = open_database()
    try:
        tried = deliver_due(db, config=DeliveryConfig.of(get_settings()))
    finally:
        db.engine.dispose()
    out.print(f"{tried} notification(s) tried")
