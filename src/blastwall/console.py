"""What every CLI command shares: the database, the operator, output and the audit record."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from blastwall.audit import service as audit_service
from blastwall.auth.roles import Principal, local_operator
from blastwall.db import Database
from blastwall.errors import ClientError
from blastwall.settings import get_settings

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


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
        table.add_row(*(fmt(v) for v in row))
    out.print(table)
