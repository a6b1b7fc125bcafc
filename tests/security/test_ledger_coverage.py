"""The ledger covers what it claims (issue 18): evidence changed directly in the database —
an item row deleted, expired without a record around a legal hold, moved to another
incident, its note, size, name or collector edited; checkpoints deleted and a record
rewritten with the chain computed again; records cut or rewritten after the last
checkpoint — is found by `verify-ledger`, and an export of the incident is refused."""

from __future__ import annotations

import asyncio
import getpass
import http.server
import json
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from blastwall.cli import app
from blastwall.db import Base, Database, make_engine, utcnow
from blastwall.errors import LedgerBroken
from blastwall.evidence import custody, schedule, service, verify
from blastwall.evidence.ledger import (
    body_hash,
    canonical,
    checkpoint_message,
    read_key,
    record_hash,
)
from blastwall.evidence.models import (
    Checkpoint,
    EvidenceItem,
    FullViewGrant,
    LedgerHead,
    LedgerRecord,
    LegalHold,
)
from blastwall.evidence.vault import FileStore
from blastwall.evidence.witness import Witness
from blastwall.migrate import alembic_config, upgrade
from blastwall.settings import Settings, get_settings
from tests.conftest import PG_SCHEMA, POSTGRES_URL, Clients
from tests.support.evidence import evidence_dir, vault, witness
from tests.support.evidence_state import (
    ALICE,
    State,
    add_file,
    build,
    export,
    item,
    open_incident,
    rewrite,
)

__all__ = ["evidence_dir"]  # a fixture


@pytest.fixture
def state(db: Database, evidence_dir: Path) -> State:
    built = build(db, evidence_dir)
    with db.transaction() as session:
        report = verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=witness(evidence_dir), blobs=True
        )
    assert report.ok, report.problems
    assert report.witnessed == report.checkpoints >= 2
    return built


def _problems(session: Session, evidence_dir: Path, **options: Any) -> list[str]:
    report = verify.verify_ledger(
        session, vault=vault(evidence_dir), witness=witness(evidence_dir), **options
    )
    assert not report.ok, "not detected"
    return report.problems


def _refused(session: Session, incident: int, evidence_dir: Path) -> list[str]:
    with pytest.raises(LedgerBroken) as refused:
        export(session, incident, evidence_dir)
    assert "no bundle was written" in str(refused.value)
    return refused.value.problems


# --- item rows --------------------------------------------------------------------------


def _expire_behind_the_ledger(session: Session, state: State) -> None:
    row = item(session, state.sixth)
    session.execute(
        update(EvidenceItem)
        .where(EvidenceItem.id == state.sixth)
        .values(state="expired", removed_at=utcnow())
    )
    vault(state.data).blobs.delete(row.sha256)


CASES: dict[str, tuple[Callable[[Session, State], object], str]] = {
    "row deleted": (
        lambda s, st: s.execute(delete(EvidenceItem).where(EvidenceItem.id == st.sixth)),
        "the evidence table has no such row",
    ),
    "expired around the legal hold, its bytes gone": (
        _expire_behind_the_ledger,
        "its state is 'expired', but no record removed it",
    ),
    "moved to another incident": (
        lambda s, st: s.execute(
            update(EvidenceItem).where(EvidenceItem.id == st.sixth).values(incident_id=st.free)
        ),
        "incident of its row differ",
    ),
    "note edited": (
        lambda s, st: s.execute(
            update(EvidenceItem).where(EvidenceItem.id == st.sixth).values(note="nothing here")
        ),
        "note of its row differ",
    ),
    "size edited": (
        lambda s, st: s.execute(
            update(EvidenceItem).where(EvidenceItem.id == st.sixth).values(size=1)
        ),
        "size of its row differ",
    ),
    "name edited": (
        lambda s, st: s.execute(
            update(EvidenceItem).where(EvidenceItem.id == st.sixth).values(name="other.txt")
        ),
        "name of its row differ",
    ),
    "collector edited": (
        lambda s, st: s.execute(
            update(EvidenceItem).where(EvidenceItem.id == st.sixth).values(collected_by="eve")
        ),
        "collected_by of its row differ",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_item_changed_in_the_database_is_found_and_not_exported(
    db: Database, state: State, case: str
) -> None:
    tamper, expected = CASES[case]
    with db.transaction() as session:
        tamper(session, state)
        session.commit()
        problems = _problems(session, state.data, blobs=True)
        assert any(f"item {state.sixth}" in p and expected in p for p in problems), problems
        refused = _refused(session, state.held, state.data)
        assert any(f"item {state.sixth}" in p for p in refused), refused
        if case == "moved to another incident":
            assert any(
                f"item {state.sixth}" in p for p in _refused(session, state.free, state.data)
            )


def test_a_legal_hold_or_a_grant_removed_in_the_database_is_found(
    db: Database, state: State
) -> None:
    with db.transaction() as session:
        savepoint = session.begin_nested()
        session.execute(text("DELETE FROM evidence_holds"))
        problems = _problems(session, state.data)
        assert any("placed a legal hold that no record lifted" in p for p in problems)
        assert _refused(session, state.held, state.data)
        savepoint.rollback()
        session.execute(text("DELETE FROM evidence_grants"))
        session.commit()
        problems = _problems(session, state.data)
        assert any(f"granted {'gina'} the full view" in p for p in problems), problems


# --- checkpoints and the chain ------------------------------------------------------------


def _reword(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "details": {**body["details"], "reason": "routine check"}}


def _viewed(session: Session) -> int:
    """The first `viewed` record: a view the rewrite hides the reason of."""
    seq = session.scalar(select(func.min(LedgerRecord.seq)).where(LedgerRecord.action == "viewed"))
    assert seq is not None
    return int(seq)


def test_checkpoints_deleted_and_the_chain_recomputed_are_found_by_the_file(
    db: Database, state: State, tmp_path: Path
) -> None:
    with db.transaction() as session:
        session.execute(delete(Checkpoint))
        rewrite(session, _viewed(session), _reword)
        session.commit()
        # Every hash, link and column holds: only the checkpoint file tells.
        assert verify.verify_ledger(
            session, vault=vault(state.data), witness=Witness(file=tmp_path / "none")
        ).ok
        problems = _problems(session, state.data)
        assert any("not in the database — checkpoints were removed" in p for p in problems)
        assert any("is not the record it signed" in p for p in problems), problems
        assert _refused(session, state.held, state.data)


def test_the_copy_and_the_endpoint_find_it_when_the_file_is_cut_too(
    db: Database, evidence_dir: Path, tmp_path: Path
) -> None:
    """Someone with the data directory as well cuts the checkpoint file: the copy kept
    elsewhere, and what the checkpoint endpoint received, still hold the checkpoints."""
    received: list[bytes] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    copy = tmp_path / "elsewhere" / "checkpoints.jsonl"
    everywhere = Witness(
        file=witness(evidence_dir).file, copy=copy, url=f"http://127.0.0.1:{server.server_port}/cp"
    )
    try:
        with db.transaction() as session:
            build_state_with(session, everywhere, evidence_dir)
            assert verify.verify_ledger(session, vault=vault(evidence_dir), witness=everywhere).ok
    finally:
        server.shutdown()
        server.server_close()
    lines = [json.loads(r) for r in received]
    assert [entry["id"] for entry in lines] == [
        json.loads(x)["id"] for x in copy.read_text().split()
    ]
    endpoint = tmp_path / "endpoint.jsonl"
    endpoint.write_bytes(b"\n".join(received) + b"\n")
    with db.transaction() as session:
        session.execute(delete(Checkpoint))
        rewrite(session, _viewed(session), _reword)
        session.commit()
        everywhere.file.write_text("")  # the data directory's file, emptied
        alone = Witness(file=everywhere.file)
        assert verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=alone
        ).ok  # the gap the copies close
        for found in (
            verify.verify_ledger(session, vault=vault(evidence_dir), witness=everywhere),
            verify.verify_ledger(
                session, vault=vault(evidence_dir), witness=alone, copies=[endpoint]
            ),
        ):
            assert any("is not the record it signed" in p for p in found.problems), found


def build_state_with(session: Session, where: Witness, evidence_dir: Path) -> None:
    """A view and two checkpoints written to `where`."""
    incident = open_incident(session, "witnessed")
    first = add_file(session, incident, "a.txt", "first", data=evidence_dir)
    service.checkpoint(session, witness=where, key=vault(evidence_dir).key())
    session.commit()
    custody.read_item(
        session, vault=vault(evidence_dir), item_id=first, principal=ALICE, reason="triage"
    )
    add_file(session, incident, "b.txt", "second", data=evidence_dir)
    service.checkpoint(session, witness=where, key=vault(evidence_dir).key())
    session.commit()


def test_the_tail_is_signed_by_the_server_and_then_cannot_be_cut_or_rewritten(
    db: Database, state: State
) -> None:
    """Records after the last checkpoint are covered once the server's periodic checkpoint
    signs them; cutting them off, or rewriting one, is then found."""
    with db.transaction() as session:
        custody.read_item(
            session,
            vault=vault(state.data),
            item_id=state.sixth,
            principal=ALICE,
            reason="late view",
        )
        head = session.scalar(select(LedgerHead.seq))
    key_path = vault(state.data).key_path
    signed = schedule.checkpoint_due(db, witness=witness(state.data), key_path=key_path)
    assert signed is not None and signed.seq == head
    assert schedule.checkpoint_due(db, witness=witness(state.data), key_path=key_path) is None
    with db.transaction() as session:
        savepoint = session.begin_nested()
        last = session.get(LedgerRecord, head)
        assert last is not None
        session.execute(delete(LedgerRecord).where(LedgerRecord.seq == head))
        session.execute(update(LedgerHead).values(seq=head - 1, hash=last.prev_hash))
        assert any(
            f"record {head} is not the record it signed" in p
            for p in _problems(session, state.data)
        )
        assert _refused(session, state.held, state.data)
        savepoint.rollback()
        rewrite(session, head, _reword)
        session.commit()
        assert any(
            f"record {head} is not the record it signed" in p
            for p in _problems(session, state.data)
        )


def test_the_server_loop_signs_only_when_there_is_something_new(db: Database, state: State) -> None:
    rounds: list[float] = []

    async def sleep(seconds: float) -> None:
        rounds.append(seconds)
        if len(rounds) > 3:
            raise asyncio.CancelledError

    with db.transaction() as session:
        before = session.scalar(select(func.count()).select_from(Checkpoint))
        custody.read_item(
            session,
            vault=vault(state.data),
            item_id=state.sixth,
            principal=ALICE,
            reason="late view",
        )
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(
            schedule.run_checkpoints(
                db,
                interval=300,
                witness=witness(state.data),
                key_path=vault(state.data).key_path,
                write_lock=asyncio.Lock(),
                sleep=sleep,
            )
        )
    assert rounds == [300, 300, 300, 300]
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Checkpoint)) == (before or 0) + 1
        assert verify.verify_ledger(
            session, vault=vault(state.data), witness=witness(state.data)
        ).ok


# --- over the API, and on the command line as in the issue -------------------------------


def test_the_api_refuses_the_export_with_what_is_wrong(
    clients: Clients, admin: dict[str, str], db: Database, state: State
) -> None:
    with db.transaction() as session:
        session.execute(delete(EvidenceItem).where(EvidenceItem.id == state.sixth))
        session.commit()
    answer = clients.client.post(
        f"/api/v1/incidents/{state.held}/evidence/export",
        json={"reason": "for the regulator"},
        headers=admin,
    )
    assert answer.status_code == 409, answer.text
    assert answer.json()["title"] == "Evidence ledger does not verify"
    assert any(f"item {state.sixth}" in p for p in answer.json()["problems"])
    report = clients.client.get("/api/v1/evidence/ledger/verify", headers=admin).json()
    assert not report["ok"] and any(f"item {state.sixth}" in p for p in report["problems"])


@pytest.fixture
def installation(cli: CliRunner, tmp_path: Path) -> Iterator[Path]:
    """An installation made on the command line: incident 1 on legal hold with six files,
    incident 2 with one, an export; its data dir saved, to start each case from."""

    def run(*args: str) -> None:
        result = cli.invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output, result.exception)

    run("init")
    for title in ("refund bot misled a customer", "another"):
        run(
            "incident",
            "open",
            "--title",
            title,
            "--archetype",
            "misinformation_cascade",
            "--severity",
            "SEV3",
        )
    for n in range(1, 7):
        note = tmp_path / f"note-{n}.txt"
        note.write_text(f"customer note {n}\n")
        run("evidence", "add", "1", str(note), "--note", f"note {n}")
    other = tmp_path / "other.txt"
    other.write_text("other\n")
    run("evidence", "add", "2", str(other))
    run("evidence", "hold", "1", "--reason", "complaint filed")
    user = "cli:" + getpass.getuser()
    run("evidence", "grant", "1", "--to", user, "--reason", "export")
    run("evidence", "grant", "2", "--to", user, "--reason", "export")
    run("evidence", "export", "1", "-o", str(tmp_path / "first.zip"), "--reason", "first")
    data = get_settings().data_dir
    shutil.copytree(data, tmp_path / "pristine")
    yield data


ISSUE_CASES = {
    "DELETE FROM evidence_items WHERE id=6": ["DELETE FROM evidence_items WHERE id=6"],
    "expired, its blob deleted": ["UPDATE evidence_items SET state='expired' WHERE id=6"],
    "moved to incident 2": ["UPDATE evidence_items SET incident_id=2 WHERE id=6"],
}


def test_on_the_command_line_as_the_issue_did(
    cli: CliRunner, installation: Path, tmp_path: Path
) -> None:
    """Each case from the installation as it was: `verify-ledger --blobs` fails naming item
    6, `export` fails with the problems and leaves no file."""
    kept = tmp_path / "received.jsonl"  # what an endpoint would have received
    shutil.copy(installation / "evidence-checkpoints.jsonl", kept)
    before = cli.invoke(app, ["evidence", "verify-ledger", "--checkpoints", str(kept)])
    assert before.exit_code == 0 and "2 checkpoint lines compared" in before.output, before.output
    for case, statements in ISSUE_CASES.items():
        shutil.rmtree(installation)
        shutil.copytree(tmp_path / "pristine", installation)
        connection = sqlite3.connect(installation / "blastwall.db")
        (sha256,) = connection.execute("SELECT sha256 FROM evidence_items WHERE id=6").fetchone()
        for statement in statements:
            connection.execute(statement)
        connection.commit()
        connection.close()
        if "blob" in case:
            FileStore(get_settings().vault_dir).delete(sha256)
        checked = cli.invoke(app, ["evidence", "verify-ledger", "--blobs"])
        assert checked.exit_code == 1, (case, checked.output)
        assert "FAIL item 6" in checked.output, case
        bundle = tmp_path / "after.zip"
        exported = cli.invoke(app, ["evidence", "export", "1", "-o", str(bundle), "--reason", "x"])
        assert exported.exit_code == 1, (case, exported.output)
        assert isinstance(exported.exception, LedgerBroken), case
        assert any("item 6" in p for p in exported.exception.problems), case
        assert not bundle.exists() and not (tmp_path / "after.zip.partial").exists()


# --- an installation upgraded from before field binding ----------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def own_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of this test's own (it is migrated down and up), on each database."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'upgraded.db'}")
        yield engine
        engine.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL: BLASTWALL_TEST_POSTGRES_URL is not set")
    schema = f"{PG_SCHEMA}_upgrade"
    url = Settings(database_url=POSTGRES_URL).resolved_database_url
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield engine
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def _table(model: type[Base]) -> Table:
    """The table of `model` (declared as a FromClause; a mapped class has a Table)."""
    return cast(Table, model.__table__)


def _as_before(connection: Connection, evidence_dir: Path) -> None:
    """What the code before field binding wrote: records of version 1 without the item's
    row or the grant's id, removal, hold and grant times a moment apart from their records,
    checkpoints in the database only."""
    records = _table(LedgerRecord)
    prev = "0" * 64
    for seq, body in connection.execute(
        select(records.c.seq, records.c.body).order_by(records.c.seq)
    ).all():
        old = json.loads(body)
        old["v"] = 1
        old.pop("row", None)
        old["details"].pop("grant", None)
        text_ = canonical(old)
        digest = body_hash(text_)
        hashed = record_hash(prev, digest)
        connection.execute(
            update(records)
            .where(records.c.seq == seq)
            .values(prev_hash=prev, body=text_, body_hash=digest, record_hash=hashed)
        )
        prev = hashed
    connection.execute(update(_table(LedgerHead)).values(hash=prev))
    later = timedelta(milliseconds=1)
    for table, column in (
        (_table(EvidenceItem), "removed_at"),
        (_table(LegalHold), "placed_at"),
        (_table(FullViewGrant), "granted_at"),
    ):
        (key,) = table.primary_key.columns
        for row_key, value in connection.execute(select(key, table.c[column])).all():
            if value is not None:
                moved = {column: value + later}
                connection.execute(update(table).where(key == row_key).values(moved))
    connection.execute(delete(_table(Checkpoint)))
    head = connection.execute(select(_table(LedgerHead))).one()
    signing = read_key(vault(evidence_dir).key_path)
    at = utcnow()
    message = checkpoint_message(
        seq=head.seq, head=head.hash, at=at.isoformat(), key=signing.fingerprint
    )
    connection.execute(
        insert(_table(Checkpoint)).values(
            seq=head.seq,
            head_hash=head.hash,
            message=message,
            signature=signing.sign(message.encode()).hex(),
            key_fingerprint=signing.fingerprint,
            at=at,
        )
    )


def test_an_upgraded_installation_verifies(own_engine: Engine, evidence_dir: Path) -> None:
    """Evidence written before field binding verifies after the upgrade (0016 binds the
    removal, hold and grant rows to their records, from the ledger); a checkpoint after it
    writes the database's checkpoints to the new checkpoint file; and a change to what the
    old records hold is still found."""
    upgrade(own_engine)
    db = Database(own_engine)
    state = build(db, evidence_dir)
    config = alembic_config(own_engine)
    with own_engine.begin() as connection:
        _as_before(connection, evidence_dir)
        config.attributes["connection"] = connection
        command.downgrade(config, "0015")
    witness(evidence_dir).file.unlink()
    upgrade(own_engine)
    with db.transaction() as session:
        report = verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=witness(evidence_dir), blobs=True
        )
        assert report.ok, report.problems
        assert report.checkpoints == 1 and report.witnessed == 0
        assert any("no checkpoint file yet" in n for n in report.notes)
        assert (
            None
            not in session.scalars(
                select(EvidenceItem.removal_seq).where(EvidenceItem.state != "kept")
            ).all()
        )
        assert None not in session.scalars(select(FullViewGrant.record_seq)).all()
        assert None not in session.scalars(select(LegalHold.record_seq)).all()
        # `blastwall evidence checkpoint` with nothing new to sign starts the file.
        service.checkpoint(session, witness=witness(evidence_dir), key=vault(evidence_dir).key())
        session.commit()
        report = verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=witness(evidence_dir)
        )
        assert report.ok and report.checkpoints == report.witnessed == 1, report
        custody.read_item(
            session, vault=vault(evidence_dir), item_id=state.sixth, principal=ALICE, reason="after"
        )
        service.checkpoint(session, witness=witness(evidence_dir), key=vault(evidence_dir).key())
        session.commit()
        report = verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=witness(evidence_dir)
        )
        assert report.ok and report.checkpoints == report.witnessed == 2, report
        session.execute(
            update(EvidenceItem).where(EvidenceItem.id == state.sixth).values(note="other")
        )
        session.commit()
        assert any("note of its row differ" in p for p in _problems(session, evidence_dir))
