"""What every CLI command shares: the database, the operator, output and the audit record.

The audit log records every CLI command that changes something once it has (`audit`, in the
command's own transaction), and every command that fails, whatever it is (`audit_failure`,
called once for all of them by the root command in `cli.py`, in a transaction of its own:
the command's was rolled back).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import inspect, make_url
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session
from typer.core import TyperGroup

from blastwall import pipeline, wiring
from blastwall.audit import service as audit_service
from blastwall.auth.roles import Principal, local_operator
from blastwall.db import Database, dispose
from blastwall.errors import BlastwallError, NotInitialised
from blastwall.settings import get_settings

_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Characters that act on a terminal instead of being shown (escape sequences that set
colours, move the cursor, retitle the window or write the clipboard; carriage return and
backspace that overwrite what was printed) and bidirectional controls that reorder it."""


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """The text with the characters of `_UNSHOWABLE` written as escapes (\\x1b, \\u202e):
    what the CLI prints of AI systems' inputs and outputs is hostile often enough that it
    must not drive the operator's terminal, nor hide what it says."""
    return _UNSHOWABLE.sub(_visible, text) if _UNSHOWABLE.search(text) else text


class SafeConsole(Console):
    """A console for text that may come from AI systems and their users: strings are
    printed through `clean`, and are not read as Rich markup unless the call says
    `markup=True` (then every part that is not the command's own goes through `escape`)."""

    def print(self, *objects: Any, **options: Any) -> None:
        options.setdefault("markup", False)
        super().print(*(clean(o) if isinstance(o, str) else o for o in objects), **options)


out = SafeConsole(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = SafeConsole(stderr=True, soft_wrap=True)


def open_database() -> Database:
    settings = get_settings()
    db = Database.from_url(settings.resolved_database_url)
    if not inspect(db.engine).has_table("alembic_version"):
        raise NotInitialised(
            f"The database at {settings.resolved_database_url} is not set up. "
            "Run `blastwall init` first."
        )
    return db


@contextmanager
def session_scope() -> Iterator[Session]:
    """A command's unit of work: what the block did is committed when it ends without an
    error, with the command's audit record (`audit`), and rolled back when it raises."""
    db = open_database()
    try:
        with db.transaction() as session:
            yield session
    finally:
        dispose(db.engine)


def operator() -> Principal:
    return local_operator()


_arguments: ContextVar[list[str] | None] = ContextVar("blastwall_arguments", default=None)
"""The arguments of the command being run, as the root command (`AuditedGroup`) got them."""
_SECRET_OPTIONS = ("--token", "--secret")


def command_line() -> str:
    """The command's arguments as the audit log records them, secrets (`--token`) masked."""
    arguments = _arguments.get()
    if arguments is None:
        arguments = sys.argv[1:]
    shown: list[str] = []
    for argument in arguments:
        if shown and shown[-1] in _SECRET_OPTIONS:
            argument = "***"
        elif argument.startswith(tuple(f"{o}=" for o in _SECRET_OPTIONS)):
            argument = argument.split("=", 1)[0] + "=***"
        elif shown and shown[-1] == "--set" and argument.partition("=")[0] in _secret_settings():
            argument = argument.partition("=")[0] + "=***"  # a secret given by mistake
        shown.append(argument)
    return " ".join(shown)[:2000]


def _secret_settings() -> frozenset[str]:
    """The channel settings that some notifier keeps secret (`notify channel add --set`)."""
    from blastwall.plugins import notifiers

    return frozenset().union(*(n.secret_keys for n in notifiers().values()))


def audit(session: Session, *, command: str, object: str | None) -> None:
    """Record a mutating CLI command in the audit log; status 0: it succeeded."""
    who = operator()
    audit_service.record(
        session,
        actor=who.name,
        role=who.role.value,
        method="CLI",
        route=command,
        path=command_line(),
        object=object,
        status_code=0,
    )


def failure_status(error: BaseException) -> int:
    """The status a failed command is recorded with: the HTTP status the API answers for
    the same error (404 not found, 403 refused, 409 conflict, 422 bad input), 500 for an
    error Blastwall did not expect."""
    if isinstance(error, BlastwallError):
        return error.status_code
    if isinstance(error, IntegrityError):
        return 409
    if isinstance(error, (ValidationError, typer.TyperException, DataError)):
        return 422  # TyperException: a usage error, a file argument that cannot be opened
    return 500


def audit_failure(command: str, error: BaseException) -> None:
    """Record a failed command in the audit log, with `failure_status`, in a transaction of
    its own. Nothing is recorded where no database is set up (it is not created for this); a
    record that cannot be written is said on stderr, and the command's own error stands."""
    if isinstance(error, NotInitialised):
        return
    try:
        settings = get_settings()
        url = make_url(settings.resolved_database_url)
        if url.get_backend_name() == "sqlite" and not (
            url.database and url.database != ":memory:" and Path(url.database).exists()
        ):
            return
        db = open_database()
    except NotInitialised:
        return
    except Exception as exc:  # a bad URL, an unreachable server: the command's error stands
        _unrecorded(exc)
        return
    who = operator()
    try:
        with db.transaction() as session:
            audit_service.record(
                session,
                actor=who.name,
                role=who.role.value,
                method="CLI",
                route=command,
                path=command_line(),
                object=None,
                status_code=failure_status(error),
            )
    except Exception as exc:
        _unrecorded(exc)
    finally:
        dispose(db.engine)


class AuditedGroup(TyperGroup):
    """The root command, the boundary every command runs inside: a command that fails (bad
    input, not found, refused, an unexpected error) is recorded in the audit log once here,
    with the error's status (`audit_failure`), whichever command it is. Asking for help and
    the exit codes a command gives on purpose (`typer.Exit`) are not failures."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _arguments.set(list(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        if not pipeline.wired():
            wiring.install()
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            # A group run without a subcommand shows its help through NoArgsIsHelpError,
            # which Typer does not export (it checks the name too).
            if type(exc).__name__ != "NoArgsIsHelpError":
                command = _command_path(self, ctx, _arguments.get() or [])
                if command:
                    audit_failure(command, exc)
            raise
        finally:
            _arguments.set(None)


def _command_path(group: TyperGroup, ctx: Any, arguments: list[str]) -> str:
    """The names of the (sub)commands the arguments reached: `incident status`; empty when
    not even the first is a command."""
    names: list[str] = []
    command: Any = group
    for argument in arguments:
        if not isinstance(command, TyperGroup) or argument.startswith("-"):
            break
        found = command.get_command(ctx, argument)
        if found is None:
            break
        names.append(argument)
        command = found
    return " ".join(names)


def _unrecorded(exc: Exception) -> None:
    err.print(
        f"[yellow]warning:[/yellow] the audit record of this failed command could not be "
        f"written: {escape(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}",
        markup=True,
        highlight=False,
    )


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value) or "-"
    return str(getattr(value, "value", value))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> None:
    table = Table(title=title or None, show_lines=False)
    for index, column in enumerate(columns):
        table.add_column(column, no_wrap=index == 0, overflow="fold")
    for row in rows:
        table.add_row(*(Text(clean(fmt(v))) for v in row))
    out.print(table)
