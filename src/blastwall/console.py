"""What every CLI command shares: the database, the operator, output and the audit record."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from blastwall.audit import service as audit_service
from blastwall.auth.roles import Principal, local_operator
from blastwall.db import Database
from blastwall.errors import ClientError
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


class NotInitialised(ClientError):
    title = "Not initialised"


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
    db = open_database()
    try:
        with db.session() as session:
            yield session
    finally:
        db.engine.dispose()


def operator() -> Principal:
    return local_operator()


def audit(session: Session, *, command: str, object: str | None) -> None:
    """Record a mutating CLI command in the audit log."""
    who = operator()
    audit_service.record(
        session,
        actor=who.name,
        role=who.role.value,
        method="CLI",
        route=command,
        path=" ".join(sys.argv[1:])[:2000],
        object=object,
        status_code=0,
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
