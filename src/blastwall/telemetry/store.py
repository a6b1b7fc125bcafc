"""Bulk writes of telemetry rows, the hot end of ingest: one statement per table and batch.

* SQLite: the driver's executemany on tuples converted here (JSON as orjson text, timestamps
  in the text form SQLAlchemy's SQLite DATETIME reads back). SQLAlchemy's per-value type
  processing would cost more than the insert itself.
* PostgreSQL through psycopg: ``COPY ... FROM STDIN``, JSON handed over as text for the
  server to parse into jsonb. About half the client's CPU time of a multi-row INSERT.
* Anything else: SQLAlchemy Core executemany.

On SQLite and PostgreSQL a None in a JSON column is stored as SQL NULL.

With `unique` (the columns of a unique index), a row whose key is stored already, or comes
earlier in the same batch, is left out by the database's own conflict handling, without a
read before the write: a span resent by an exporter is stored once.

* SQLite: ``INSERT ... ON CONFLICT DO NOTHING`` through the same executemany. The rows
  stored are counted by the driver; only when some were left out are the new ones read
  back (those with an id above the largest before the insert: SQLite has one writer).
* PostgreSQL through psycopg: ``COPY`` has no conflict handling, and a batch is nearly
  always new. So ``COPY`` first, in a savepoint; when the unique index refuses a row (or
  another transaction storing the same spans at the same moment deadlocks with this one),
  back to the savepoint, and the batch goes again through a temporary table of the
  connection and one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` the keys of
  the rows stored, in the order of their key (transactions inserting the same spans that
  way take their locks in the same order: no deadlock). A fresh batch costs ``COPY`` and
  the savepoint; a resend, its rows sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Table, insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from blastwall.db import UTCDateTime

try:
    import psycopg
except ModuleNotFoundError:  # without the `postgres` extra: no engine reaches the COPY paths
    psycopg = None  # type: ignore[assignment]

__all__ = ["insert_rows"]


def insert_rows(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    unique: Sequence[str] = (),
) -> list[int]:
    """Insert `rows` (dicts with the same keys, each a column of `table`) in one statement,
    inside the connection's current transaction; answer the positions in `rows` of the rows
    stored. With `unique`, the columns of a unique index of `table` (a None in them counts
    as one value, as the index's COALESCE makes it), rows whose key is stored already are
    left out."""
    if not rows:
        return []
    dialect = connection.dialect
    if not unique:
        if dialect.name == "sqlite":
            _sqlite(connection, table, rows)
        elif dialect.name == "postgresql" and dialect.driver == "psycopg":
            _copy(connection, table, rows)
        else:
            # Core executemany: one statement whatever mix of NULLs the rows carry (the ORM's
            # bulk path would split the batch by which columns are NULL).
            connection.execute(insert(table), rows)
        return list(range(len(rows)))
    if dialect.name == "sqlite":
        return _sqlite_new(connection, table, rows, unique)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _copy_new(connection, table, rows, unique)
    if dialect.name == "postgresql":  # pragma: no cover - Blastwall connects through psycopg
        statement = postgresql.insert(table).on_conflict_do_nothing()
        keys = [table.c[name] for name in unique]
        stored = connection.execute(statement.returning(*keys), rows).all()
        return _positions(rows, unique, stored)
    raise NotImplementedError(f"no conflict handling for {dialect.name}")


def _key(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple("" if value is None else value for value in values)


def _positions(
    rows: list[dict[str, Any]], unique: Sequence[str], stored: Iterable[Sequence[Any]]
) -> list[int]:
    """The positions in `rows` of the keys `stored` (of a row repeated in `rows`, the first)."""
    first: dict[tuple[Any, ...], int] = {}
    for position, row in enumerate(rows):
        first.setdefault(_key(row[name] for name in unique), position)
    return sorted(first[_key(key)] for key in stored if _key(key) in first)


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


def _sqlite_new(
    connection: Connection, table: Table, rows: list[dict[str, Any]], unique: Sequence[str]
) -> list[int]:
    names, values = _tuples(table, rows, time_text=True)
    placeholders = ", ".join("?" for _ in names)
    before = connection.exec_driver_sql(f"SELECT max(id) FROM {table.name}").scalar()
    statement = (
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders}) "
        "ON CONFLICT DO NOTHING"
    )
    stored = connection.exec_driver_sql(statement, values).rowcount
    if stored == len(rows):
        return list(range(len(rows)))
    if stored == 0:
        return []
    new = connection.exec_driver_sql(
        f"SELECT {', '.join(unique)} FROM {table.name} WHERE id > ?", (before or 0,)
    )
    return _positions(rows, unique, new)


def _copy_new(
    connection: Connection, table: Table, rows: list[dict[str, Any]], unique: Sequence[str]
) -> list[int]:
    names, values = _tuples(table, rows, time_text=False)
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    columns = ", ".join(names)
    statement = "SAVEPOINT blastwall_copy"
    try:
        with raw.cursor() as cursor:
            cursor.execute(statement)
            statement = f"COPY {table.name} ({columns}) FROM STDIN"
            try:
                with cursor.copy(statement) as copy:
                    write = copy.write_row
                    for value in values:
                        write(value)
                stored = list(range(len(rows)))
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
                # Some of the rows are stored already (a resend), or are being stored by
                # another transaction: this batch again, without them.
                cursor.execute("ROLLBACK TO SAVEPOINT blastwall_copy")
                statement = f"INSERT INTO {table.name} ... ON CONFLICT DO NOTHING"
                stored = _staged(cursor, table, rows, values, names, unique)
            statement = "RELEASE SAVEPOINT blastwall_copy"
            cursor.execute(statement)
    except psycopg.Error as error:
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error
    return stored


def _staged(
    cursor: psycopg.Cursor[Any],
    table: Table,
    rows: list[dict[str, Any]],
    values: list[tuple[Any, ...]],
    names: list[str],
    unique: Sequence[str],
) -> list[int]:
    """COPY `values` into a temporary table of the connection, then one `INSERT ... SELECT
    ... ON CONFLICT DO NOTHING` from it, in the order of the key (two transactions inserting
    the same spans take their locks in the same order: no deadlock); answer the positions
    in `rows` of the rows stored."""
    staging = f"blastwall_new_{table.name}"
    columns = ", ".join(names)
    order = ", ".join(
        f"coalesce({name}, '')" if table.c[name].nullable else name for name in unique
    )
    # The connection's own, emptied at each commit: the columns of `table`, no constraint.
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "
        f"SELECT * FROM {table.name} WITH NO DATA"
    )
    with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
        write = copy.write_row
        for value in values:
            write(value)
    cursor.execute(  # emptied here too: a savepoint released is no commit
        f"WITH batch AS (DELETE FROM {staging} RETURNING {columns}) "
        f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM batch ORDER BY {order} "
        f"ON CONFLICT DO NOTHING RETURNING {', '.join(unique)}"
    )
    return _positions(rows, unique, cursor.fetchall())


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
