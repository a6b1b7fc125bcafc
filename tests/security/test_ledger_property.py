"""Any single-row change, deletion or insertion in the evidence tables — items, ledger
records, the head row, checkpoints, legal holds, full-view grants — is found by
`verify_ledger`; when the row is an item, a hold or a grant, the check every export of its
incident runs first (`verify_incident`) finds it too. Each mutation is made in a savepoint
that is rolled back, over one installation in every state the ledger covers."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from blastwall.db import Database, UTCDateTime, utcnow
from blastwall.evidence import verify
from blastwall.evidence.ledger import body_hash, record_hash
from blastwall.evidence.models import (
    Checkpoint,
    EvidenceItem,
    FullViewGrant,
    LedgerHead,
    LedgerRecord,
    LegalHold,
)
from tests.support.evidence import evidence_dir, vault, witness
from tests.support.evidence_state import State, build

__all__ = ["evidence_dir"]  # a fixture

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TABLES: dict[str, Table] = {
    m.__tablename__: m.__table__  # type: ignore[misc]
    for m in (EvidenceItem, LedgerRecord, LedgerHead, Checkpoint, LegalHold, FullViewGrant)
}
OF_AN_INCIDENT = ("evidence_items", "evidence_holds", "evidence_grants")
STATES = ("kept", "deleted", "expired")


@pytest.fixture
def installation(db: Database, evidence_dir: Path) -> tuple[Database, State]:
    state = build(db, evidence_dir)
    with db.transaction() as session:
        report = verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=witness(evidence_dir)
        )
        assert report.ok, report.problems
    return db, state


def _key(table: Table) -> Column[Any]:
    (column,) = table.primary_key.columns
    return column


def _rows(session: Session, table: Table) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.execute(select(table).order_by(_key(table)))]


def _incidents(state: State) -> list[int]:
    return [state.held, state.other, state.free, state.merged]


def _changed(
    data: st.DataObject,
    session: Session,
    state: State,
    table: Table,
    column: Column[Any],
    row: dict[str, Any],
) -> Any:
    """Another value for `column` of `row`, one the database accepts."""
    value = row[column.name]
    flip = data.draw(st.integers(1, 60), label="flip")
    if column.name == "incident_id" and table.name in OF_AN_INCIDENT:
        taken = (
            set(session.scalars(select(LegalHold.incident_id)))
            if table.name == "evidence_holds"
            else {value}
        )
        return data.draw(st.sampled_from([i for i in _incidents(state) if i not in taken]))
    if column.name == "state":
        return data.draw(st.sampled_from([s for s in STATES if s != value]))
    if value is None:
        return utcnow() if isinstance(column.type, UTCDateTime) else flip
    if isinstance(value, datetime):
        return value + timedelta(microseconds=flip)
    if isinstance(value, int):
        return value + flip + (1000 if column.primary_key else 0)
    assert isinstance(value, str), (column, value)
    if not value:
        return "x"
    at = data.draw(st.integers(0, len(value) - 1), label="at")
    replacement = chr((ord(value[at]) + flip) % 95 + 32)
    if replacement == value[at]:
        replacement = "~" if value[at] != "~" else "!"
    return value[:at] + replacement + value[at + 1 :]


def _found(session: Session, incidents: set[int], table: str, evidence_dir: Path) -> None:
    """Whatever was changed, verification finds it; and so does the export's check, for the
    incident(s) an item, hold or grant row was of or is now of."""
    session.expunge_all()
    report = verify.verify_ledger(session, vault=vault(evidence_dir), witness=witness(evidence_dir))
    assert report.problems, "not found by verify_ledger"
    for incident in sorted(incidents) if table in OF_AN_INCIDENT else []:
        scoped = verify.verify_incident(
            session, vault=vault(evidence_dir), incident_id=incident, witness=witness(evidence_dir)
        )
        assert scoped.problems, f"not found by the export of incident {incident}"


@settings(PROPERTY, max_examples=150)
@given(data=st.data())
def test_any_changed_row_is_found(
    installation: tuple[Database, State], data: st.DataObject
) -> None:
    db, state = installation
    name = data.draw(st.sampled_from(sorted(TABLES)), label="table")
    table = TABLES[name]
    with db.transaction() as session:
        row = data.draw(st.sampled_from(_rows(session, table)), label="row")
        column = data.draw(st.sampled_from(list(table.columns)), label="column")
        savepoint = session.begin_nested()
        value = _changed(data, session, state, table, column, row)
        key = _key(table)
        session.execute(update(table).where(key == row[key.name]).values({column.name: value}))
        incidents = {row.get("incident_id"), value if column.name == "incident_id" else None}
        try:
            _found(session, {i for i in incidents if isinstance(i, int)}, name, state.data)
        finally:
            savepoint.rollback()


@PROPERTY
@given(data=st.data())
def test_any_deleted_row_is_found(
    installation: tuple[Database, State], data: st.DataObject
) -> None:
    db, state = installation
    name = data.draw(st.sampled_from(sorted(TABLES)), label="table")
    table = TABLES[name]
    with db.transaction() as session:
        row = data.draw(st.sampled_from(_rows(session, table)), label="row")
        savepoint = session.begin_nested()
        key = _key(table)
        session.execute(delete(table).where(key == row[key.name]))
        try:
            _found(
                session, {row["incident_id"]} if "incident_id" in row else set(), name, state.data
            )
        finally:
            savepoint.rollback()


def _inserted(session: Session, state: State, name: str, row: dict[str, Any]) -> dict[str, Any]:
    """A new row like `row`, as someone with the database would add it: a new item or grant
    like an existing one, a hold on an incident without one, a checkpoint copied, a head
    row more, a record chained after the head (the head row left as it is)."""
    table = TABLES[name]
    key = _key(table)
    top = session.scalar(select(func.max(key))) or 0
    if name == "evidence_holds":
        return {**row, "incident_id": state.free}
    if name == "evidence_grants":
        return {**row, "id": top + 1, "principal": "mallory"}
    if name == "evidence_ledger":
        head = session.get(LedgerHead, 1)
        assert head is not None
        body = row["body"].replace(f'"seq":{row["seq"]}', f'"seq":{head.seq + 1}')
        digest = body_hash(body)
        return {
            **row,
            "seq": head.seq + 1,
            "prev_hash": head.hash,
            "body": body,
            "body_hash": digest,
            "record_hash": record_hash(head.hash, digest),
        }
    return {**row, key.name: top + 1}


@PROPERTY
@given(data=st.data())
def test_any_inserted_row_is_found(
    installation: tuple[Database, State], data: st.DataObject
) -> None:
    db, state = installation
    name = data.draw(st.sampled_from(sorted(TABLES)), label="table")
    table = TABLES[name]
    with db.transaction() as session:
        row = data.draw(st.sampled_from(_rows(session, table)), label="like")
        savepoint = session.begin_nested()
        new = _inserted(session, state, name, row)
        session.execute(insert(table).values(new))
        try:
            _found(
                session, {new["incident_id"]} if "incident_id" in new else set(), name, state.data
            )
        finally:
            savepoint.rollback()
