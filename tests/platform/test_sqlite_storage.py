"""SQLite storage settings: the page size of new databases and the background WAL checkpoint."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from blastwall.db import SQLITE_PAGE_SIZE, SQLITE_WAL_BYTES, make_engine
from blastwall.telemetry.store import sqlite_time


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-wal-checkpoint"]


def _wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_new_database_page_size_and_autocheckpoint(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
            assert connection.exec_driver_sql("PRAGMA page_size").scalar() == SQLITE_PAGE_SIZE
            pages = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            assert pages == SQLITE_WAL_BYTES // SQLITE_PAGE_SIZE
    finally:
        engine.dispose()


def test_existing_database_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA page_size=4096")
        raw.execute("CREATE TABLE t (x TEXT)")
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA page_size").scalar() == 4096
            pages = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            assert pages == SQLITE_WAL_BYTES // 4096
    finally:
        engine.dispose()


def test_commits_are_checkpointed_in_the_background(tmp_path: Path) -> None:
    """The log is copied into the database file after commits, by a thread of the engine's
    own, far below the commits' own autocheckpoint; the thread ends with its engine."""
    path = tmp_path / "wal.db"
    before = set(_checkpoint_threads())
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
    for _ in range(5):
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (?)", [("x" * 5000,)] * 50)
    # Nothing here checkpoints (the pooled connections stay open, the log is far below the
    # autocheckpoint): the rows reach the database file only through the background thread.
    assert _wait_for(lambda: path.stat().st_size > 5 * 50 * 5000)
    (thread,) = set(_checkpoint_threads()) - before
    engine.dispose()
    del engine, connection
    gc.collect()
    thread.join(timeout=60)
    assert not thread.is_alive()


_DATES = (datetime(2, 1, 1), datetime(9998, 12, 31))


@given(
    st.datetimes(*_DATES, timezones=st.just(UTC)) | st.datetimes(*_DATES, timezones=st.timezones())
)
def test_sqlite_time_is_the_text_sqlalchemy_reads_back(value: datetime) -> None:
    """The bulk writer's timestamp text, with its cache of whole seconds, is SQLAlchemy's
    SQLite DATETIME form of the same instant in UTC."""
    utc = value.astimezone(UTC)
    assert sqlite_time(value) == utc.replace(tzinfo=None).isoformat(" ", "microseconds")
    assert sqlite_time(value) == sqlite_time(utc)  # the cached second answers alike


def test_none_binds_as_null_through_its_adapter(tmp_path: Path) -> None:
    """None has an adapter of its own, registered by `make_engine` (not on import), which
    must still store SQL NULL."""
    engine = make_engine(f"sqlite:///{tmp_path / 'null.db'}")
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x, y)")
            connection.exec_driver_sql(
                "INSERT INTO t VALUES (?, ?)", [(None, 1), ("a", None), (None, None)]
            )
            rows = connection.exec_driver_sql("SELECT typeof(x), typeof(y) FROM t").all()
        assert rows == [("null", "integer"), ("text", "null"), ("null", "null")]
    finally:
        engine.dispose()
