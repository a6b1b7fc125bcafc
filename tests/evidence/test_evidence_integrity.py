"""Integrity: every single mutation of a bundle or of a ledger row is detected (hypothesis),
and a bundle can be checked by hand with sha256sum and OpenSSL."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal, Role
from blastwall.db import Database
from blastwall.evidence import flows, service, verify
from blastwall.evidence.bundle import verify_bundle
from blastwall.evidence.models import LedgerRecord
from blastwall.incidents import flows as incident_flows
from blastwall.incidents.schemas import IncidentCreate
from blastwall.telemetry.models import Interaction
from tests.support.bundles import read_members, rezip
from tests.support.evidence import add, evidence_dir, interaction, signal, vault, witness

__all__ = ["evidence_dir"]

ALICE = Principal(name="alice", role=Role.admin)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _incident(session: Session, title: str = "leak") -> int:
    start = session.scalar(select(func.count()).select_from(Interaction)) or 0
    ids = add(
        session,
        [interaction(start + i, prompt=f"prompt {i} dave@example.com") for i in range(3)],
    )
    sid = signal(session, ids)
    data = IncidentCreate(
        title=title, archetype="data_exfiltration", severity="SEV2", signals=[sid]
    )
    return incident_flows.open_incident(session, data=data, actor=ALICE).id


@pytest.fixture
def bundle(db: Database, evidence_dir: Path, tmp_path: Path) -> bytes:
    """A bundle of an incident whose ledger segment also holds another incident's records."""
    with db.transaction() as session:
        first = _incident(session)
        _incident(session, "other")
        flows.add_file(
            session,
            incident_id=first,
            data=b"log line\n",
            name="app.log",
            media_type="text/plain",
            note="",
            actor=ALICE,
            vault=vault(evidence_dir),
        )
        path = tmp_path / "b.zip"
        with path.open("wb") as handle:
            flows.export_incident(
                session,
                incident_id=first,
                out=handle,
                reason="test",
                actor=ALICE,
                witness=witness(evidence_dir),
                vault=vault(evidence_dir),
            )
    data = path.read_bytes()
    assert verify_bundle(path).ok
    return data


def _verify(tmp_path: Path, data: bytes) -> list[str]:
    path = tmp_path / "mutated.zip"
    path.write_bytes(data)
    return verify_bundle(path).problems


def test_rezip_is_the_identity(bundle: bytes) -> None:
    assert rezip(read_members(bundle)) == bundle


@PROPERTY
@given(position=st.floats(0, 1, exclude_max=True), flip=st.integers(1, 255))
def test_any_changed_byte_of_the_file_fails(
    bundle: bytes, tmp_path: Path, position: float, flip: int
) -> None:
    at = int(position * len(bundle))
    mutated = bytearray(bundle)
    mutated[at] ^= flip
    assert _verify(tmp_path, bytes(mutated)), f"byte {at} changed and not detected"


def test_the_key_and_the_zip_directory_fail_without_raising(bundle: bytes, tmp_path: Path) -> None:
    """Every byte of the public key and of the zip's central directory, flipped: a problem
    is named, nothing raises (a key of another algorithm, a zip version zipfile refuses, a
    header offset before the file's start)."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        info = archive.getinfo("pubkey.pem")
    key_at = bundle.index(b"-----BEGIN PUBLIC KEY-----", info.header_offset)
    directory_at = bundle.index(b"PK\x01\x02")  # the first central directory entry
    positions = [*range(key_at, key_at + info.file_size), *range(directory_at, len(bundle))]
    for at in positions:
        for flip in (0x01, 0x80):
            mutated = bytearray(bundle)
            mutated[at] ^= flip
            assert _verify(tmp_path, bytes(mutated)), f"byte {at} ^ {flip} not detected"


@PROPERTY
@given(data=st.data(), flip=st.integers(1, 255))
def test_any_changed_byte_of_a_member_fails_naming_it(
    bundle: bytes, tmp_path: Path, data: st.DataObject, flip: int
) -> None:
    members = read_members(bundle)
    index = data.draw(st.integers(0, len(members) - 1))
    name, content = members[index]
    at = data.draw(st.integers(0, len(content) - 1))
    changed = bytearray(content)
    changed[at] ^= flip
    members[index] = (name, bytes(changed))
    problems = _verify(tmp_path, rezip(members))
    assert problems
    if name not in ("manifest.json", "manifest.sig", "pubkey.pem"):
        assert any(name in p for p in problems), problems


@PROPERTY
@given(data=st.data())
def test_a_missing_member_fails_naming_it(
    bundle: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    members = read_members(bundle)
    index = data.draw(st.integers(0, len(members) - 1))
    name = members.pop(index)[0]
    problems = _verify(tmp_path, rezip(members))
    assert any(name in p for p in problems), problems


@PROPERTY
@given(
    name=st.from_regex(r"(items/)?[a-z0-9_.-]{1,20}", fullmatch=True),
    content=st.binary(max_size=50),
    where=st.floats(0, 1),
)
def test_an_added_member_fails_naming_it(
    bundle: bytes, tmp_path: Path, name: str, content: bytes, where: float
) -> None:
    members = read_members(bundle)
    members.insert(int(where * len(members)), (name, content))
    problems = _verify(tmp_path, rezip(members))
    assert any(name in p for p in problems), problems


def test_the_wrong_key_fails(bundle: bytes, tmp_path: Path) -> None:
    from blastwall.evidence.ledger import make_key

    other, _ = make_key(tmp_path / "other.pem")
    path = tmp_path / "b.zip"
    path.write_bytes(bundle)
    verdict = verify_bundle(path, pubkey=other.public_pem().encode())
    assert "pubkey.pem: not the public key given with --pubkey" in verdict.problems


@pytest.mark.skipif(
    not (shutil.which("openssl") and shutil.which("sha256sum") and shutil.which("unzip")),
    reason="needs openssl, sha256sum and unzip",
)
def test_checked_by_hand_with_sha256sum_and_openssl(bundle: bytes, tmp_path: Path) -> None:
    (tmp_path / "b.zip").write_bytes(bundle)
    unpacked = tmp_path / "unpacked"
    subprocess.run(["unzip", "-q", "b.zip", "-d", str(unpacked)], cwd=tmp_path, check=True)
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=unpacked, check=True)
    for message, signature in (
        ("manifest.json", "manifest.sig"),
        ("checkpoint.json", "checkpoint.sig"),
    ):
        subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                "pubkey.pem",
                "-rawin",
                "-in",
                message,
                "-sigfile",
                signature,
            ],
            cwd=unpacked,
            check=True,
            capture_output=True,
        )


# --- the ledger in the database ----------------------------------------------------------

COLUMNS = (
    "prev_hash",
    "body",
    "body_hash",
    "record_hash",
    "action",
    "incident_id",
    "item_id",
    "actor",
    "at",
    "seq",
)


@pytest.fixture
def ledger(db: Database, evidence_dir: Path) -> Database:
    with db.transaction() as session:
        first = _incident(session)
        _incident(session, "other")
        service.checkpoint(session, witness=witness(evidence_dir), key=vault(evidence_dir).key())
        session.commit()
        flows.snapshot_config(session, incident_id=first, actor=ALICE, vault=vault(evidence_dir))
        assert verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=witness(evidence_dir)
        ).ok
    return db


def _mutated(value: object, column: str, at: float, flip: int) -> object:
    if column == "at":
        assert hasattr(value, "__add__")
        return value + timedelta(microseconds=flip)  # type: ignore[operator]
    if column in ("incident_id", "item_id", "seq"):
        return (value or 0) + flip + (1000 if column == "seq" else 0)  # type: ignore[operator]
    assert isinstance(value, str)
    i = int(at * len(value))
    replacement = chr((ord(value[i]) + flip) % 95 + 32)
    if replacement == value[i]:
        replacement = "~" if value[i] != "~" else "!"
    return value[:i] + replacement + value[i + 1 :]


@PROPERTY
@given(data=st.data(), flip=st.integers(1, 60))
def test_any_changed_ledger_row_fails(
    ledger: Database, evidence_dir: Path, data: st.DataObject, flip: int
) -> None:
    with ledger.transaction() as session:
        seqs = list(session.scalars(select(LedgerRecord.seq).order_by(LedgerRecord.seq)))
        seq = data.draw(st.sampled_from(seqs))
        column = data.draw(st.sampled_from(COLUMNS))
        at = data.draw(st.floats(0, 1, exclude_max=True))
        savepoint = session.begin_nested()
        value = getattr(session.get(LedgerRecord, seq), column)
        session.expunge_all()
        session.execute(
            update(LedgerRecord)
            .where(LedgerRecord.seq == seq)
            .values({column: _mutated(value, column, at, flip)})
        )
        report = verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=witness(evidence_dir)
        )
        savepoint.rollback()
        assert report.problems, f"record {seq}: {column} changed and not detected"


@PROPERTY
@given(data=st.data())
def test_a_removed_ledger_row_fails(
    ledger: Database, evidence_dir: Path, data: st.DataObject
) -> None:
    with ledger.transaction() as session:
        seqs = list(session.scalars(select(LedgerRecord.seq).order_by(LedgerRecord.seq)))
        seq = data.draw(st.sampled_from(seqs))
        savepoint = session.begin_nested()
        session.execute(delete(LedgerRecord).where(LedgerRecord.seq == seq))
        report = verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=witness(evidence_dir)
        )
        savepoint.rollback()
        assert report.problems


def test_a_forged_checkpoint_fails(ledger: Database, evidence_dir: Path) -> None:
    with ledger.transaction() as session:
        savepoint = session.begin_nested()
        session.execute(text("UPDATE evidence_checkpoints SET head_hash = :h"), {"h": "0" * 64})
        report = verify.verify_ledger(
            session, vault=vault(evidence_dir), witness=witness(evidence_dir)
        )
        savepoint.rollback()
    assert any("checkpoint" in p for p in report.problems)
