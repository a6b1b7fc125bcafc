"""Bulk writes of telemetry rows, the hot end of ingest: one statement per table and batch.

* SQLite: the driver's executemany on tuples converted here (JSON as orjson text, timestamps
  in the text form SQLAlchemy's SQLite DATETIME reads back). SQLAlchemy's per-value type
  processing would cost more than the insert itself.
* PostgreSQL through psycopg: ``COPY ... FROM STDIN``, JSON handed over as text for the
  server to parse into jsonb. About half the client's CPU time of a multi-row INSERT.
* Anything else: SQLAlchemy Core executemany.

On SQLite and PostgreSQL a None in a JSON column is stored as SQL NULL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
import psycopg
from sqlalchemy import JSON, Connection, Table, insert
from sqlalchemy.exc import DBAPIError

from blastwall.db import UTCDateTime

__all__ = ["insert_rows"]


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys, each a column of `table`) in one statement,
    inside the connection's current transaction."""
    if not rows:
        return
    dialect = connection.dialect
    if dialect.name == "sqlite":
        _sqlite(connection, table, rows)
    elif dialect.name == "postgresql" and dialect.driver == "psycopg":
        _copy(connection, table, rows)
    else:
        # Core executemany: one statement whatever mix of NULLs the rows carry (the ORM's
        # bulk path would split the batch by which columns are NULL).
        connection.execute(insert(table), rows)


def _tuples(
    table: Table, rows: list[dict[str, Any]], time_text: bool
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and one tuple of values per row: JSON columns as text; timestamps as
    SQLite's text when `time_text`, else as they are."""
    columns = [c for c in table.columns if c.name in rows[0]]
    names = [c.name for c in columns]
    as_json = [i for i, c in enumerate(columns) if isinstance(c.type, JSON)]
    as_time = [i for i, c in enumerate(columns) if isinstance(c.type, UTCDateTime)]
    get = itemgetter(*names)
    dumps, option = orjson.dumps, orjson.OPT_NON_STR_KEYS
    # Each time column's last value and its text: the rows of a batch share received_at.
    last: dict[int, tuple[datetime | None, str]] = dict.fromkeys(as_time, (None, ""))
    values: list[tuple[Any, ...]] = []
    for row in rows:
        record = list(get(row))
        for i in as_json:
            if record[i] is not None:
                record[i] = dumps(record[i], option=option).decode()
        if time_text:
            for i in as_time:
                value = record[i]
                seen, text = last[i]
                if value is not seen:
                    text = sqlite_time(value)
                    last[i] = (value, text)
                record[i] = text
        values.append(tuple(record))
    return names, values


_SECONDS: dict[tuple[int, int, int, int], str] = {}
"""Text of whole seconds already formatted: the spans of a batch share a few."""


def sqlite_time(value: datetime) -> str:
    """A timezone-aware datetime in the text form SQLAlchemy's SQLite DATETIME reads back
    (UTC, microseconds, no offset). `datetime.isoformat` formats every field through
    printf; here the seconds' text is looked up and only the microseconds are formatted,
    in half the time."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    second = (value.toordinal(), value.hour, value.minute, value.second)
    text = _SECONDS.get(second)
    if text is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        text = _SECONDS[second] = value.isoformat(" ", "seconds")[:19]
    return f"{text}.{value.microsecond:06d}"


def _sqlite(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    names, values = _tuples(table, rows, time_text=True)
    placeholders = ", ".join("?" for _ in names)
    statement = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"
    connection.exec_driver_sql(statement, values)


def _copy(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    names, values = _tuples(table, rows, time_text=False)
    raw = connection.connection.driver_connection
    if raw is None:  # pragma: no cover - a checked-out connection always has one
        connection.execute(insert(table), rows)
        return
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            write = copy.write_row
            for value in values:
                write(value)
    except psycopg.Error as error:
        # The same exceptions SQLAlchemy raises for its own statements (DataError for a NUL
        # character, IntegrityError...), so that callers and the API handle them alike.
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error
