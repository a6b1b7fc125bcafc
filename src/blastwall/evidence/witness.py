"""Checkpoints outside the database: the witnesses of the ledger's signed heads.

Each checkpoint is appended, once its transaction has committed, as one line of canonical
JSON ``{"id", "message", "signature"}`` (the checkpoint's row id, the exact signed message
and the hex Ed25519 signature) to the checkpoint file in the data directory, to a second
file when one is configured, and POSTed to an HTTP endpoint when one is configured.
`verify.verify_ledger` compares the database's checkpoints with the files: a checkpoint
removed from the database, or a ledger rewritten under one, no longer matches them.

Lines are written after the commit, never before: a checkpoint whose transaction rolls
back would otherwise name a record that a later append replaces, which reads exactly like
a rewritten ledger. A file that does not exist yet when a checkpoint is taken (a new
installation, or one upgraded from a version without the file) first receives every
checkpoint already in the database, so that the file covers them all.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from blastwall.evidence.ledger import canonical
from blastwall.settings import Settings

__all__ = ["Witness", "Witnessed", "line", "read", "witness_on_commit"]

log = logging.getLogger("blastwall.evidence")

_PENDING = "blastwall_witness_pending"


@dataclass(frozen=True)
class Witness:
    """Where checkpoints are written outside the database."""

    file: Path
    copy: Path | None = None
    url: str | None = None
    timeout: float = 5.0

    @classmethod
    def of(cls, settings: Settings) -> Witness:
        return cls(
            file=settings.checkpoint_file_path,
            copy=settings.evidence_checkpoint_copy,
            url=settings.evidence_checkpoint_url,
        )

    @property
    def files(self) -> list[Path]:
        """The files every checkpoint is appended to, the data directory's first."""
        return [self.file, *([self.copy] if self.copy is not None else [])]


def line(*, checkpoint_id: int, message: str, signature: str) -> str:
    """A checkpoint's line in the files (no newline)."""
    return canonical({"id": checkpoint_id, "message": message, "signature": signature})


@dataclass(frozen=True)
class Witnessed:
    """One checkpoint as a file holds it."""

    id: int
    message: str
    signature: str
    seq: int
    head: str
    key: str
    line: int


def read(path: Path) -> tuple[list[Witnessed], list[str]]:
    """The checkpoints in a file, and a problem for each line that is not one."""
    entries: list[Witnessed] = []
    problems: list[str] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                signed = json.loads(data["message"])
                entry = Witnessed(
                    id=int(data["id"]),
                    message=str(data["message"]),
                    signature=str(data["signature"]),
                    seq=int(signed["seq"]),
                    head=str(signed["head"]),
                    key=str(signed["key"]),
                    line=number,
                )
                bytes.fromhex(entry.signature)
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"{path} line {number}: not a checkpoint ({exc})")
                continue
            entries.append(entry)
    return entries, problems


def _append(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{text}\n" for text in lines).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _post(url: str, lines: list[str], timeout: float) -> None:
    with httpx.Client(timeout=timeout) as client:
        for text in lines:
            answer = client.post(url, content=text, headers={"Content-Type": "application/json"})
            answer.raise_for_status()


def publish(witness: Witness, by_file: dict[Path, list[str]], posts: list[str]) -> None:
    """Append the lines to their files and POST the new ones; failures are logged, not
    raised (the checkpoints are committed already), each with the lines it did not write."""
    for path, lines in by_file.items():
        try:
            _append(path, lines)
        except OSError as exc:
            log.error(
                "could not append %d checkpoint line(s) to %s (%s); `blastwall evidence "
                "verify-ledger` will name them until they are added: %s",
                len(lines),
                path,
                exc,
                " ".join(lines),
            )
    if witness.url and posts:
        try:
            _post(witness.url, posts, witness.timeout)
        except httpx.HTTPError as exc:
            log.error("could not send checkpoint(s) to %s (%s): %s", witness.url, exc, posts)


@dataclass
class _Pending:
    witness: Witness
    by_file: dict[Path, list[str]]
    posts: list[str]


def _after_commit(session: Session) -> None:
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    for batch in pending:
        publish(batch.witness, batch.by_file, batch.posts)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's own transaction ended without a commit
        session.info.pop(_PENDING, None)


def witness_on_commit(
    session: Session, witness: Witness, new: str | None, *, adopt: Iterable[str] = ()
) -> None:
    """Write `new` (a checkpoint's line; None: no new checkpoint) once `session` commits;
    nothing if it rolls back. `adopt`: the lines of the checkpoints already in the database,
    written first to a file that does not exist yet."""
    earlier = list(adopt)
    queued: list[_Pending] = session.info.setdefault(_PENDING, [])
    started = {path for batch in queued for path in batch.by_file}
    fresh = [new] if new is not None else []
    by_file: dict[Path, list[str]] = {}
    for path in witness.files:
        lines = fresh if path.exists() or path in started else [*earlier, *fresh]
        if lines:
            by_file[path] = lines
    queued.append(_Pending(witness, by_file, fresh))
    if not event.contains(session, "after_commit", _after_commit):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_transaction_end", _after_transaction_end)
