"""The server's periodic checkpoint: the ledger's head signed every so often, so that the
records no checkpoint covers yet (the unsigned tail) are few.

`blastwall serve` runs `run_checkpoints` beside its other loops (`api._lifespan`), every
`BLASTWALL_EVIDENCE_CHECKPOINT_INTERVAL` seconds; each round signs only when records were
added since the last checkpoint, and looks first without the write slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from blastwall.db import Database
from blastwall.errors import KeyFileError
from blastwall.evidence import service
from blastwall.evidence.ledger import read_key
from blastwall.evidence.models import Checkpoint
from blastwall.evidence.witness import Witness

__all__ = ["checkpoint_due", "run_checkpoints"]

log = logging.getLogger("blastwall.evidence")


def _due(db: Database) -> bool:
    with db.session(read_only=True) as session:
        head, signed = service.head_and_last_checkpoint(session)
    return head > 0 and head != signed


def checkpoint_due(db: Database, *, witness: Witness, key_path: Path) -> Checkpoint | None:
    """Sign the ledger's head if records were added since the last checkpoint; answers the
    new checkpoint, or None when there was nothing to sign."""
    if not _due(db):
        return None
    key = read_key(key_path)
    with db.transaction() as session:
        head, signed = service.head_and_last_checkpoint(session)
        if head == 0 or head == signed:  # another process signed it meanwhile
            return None
        return service.checkpoint(session, witness=witness, key=key)


async def run_checkpoints(
    db: Database,
    *,
    interval: float,
    witness: Witness,
    key_path: Path,
    write_lock: asyncio.Lock | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Every `interval` seconds, `checkpoint_due`, until cancelled. `write_lock`: the
    server's write slot (SQLite), taken only when there is something to sign."""
    while True:
        await sleep(interval)
        try:
            if not await run_in_threadpool(_due, db):
                continue
            if write_lock is None:
                await run_in_threadpool(checkpoint_due, db, witness=witness, key_path=key_path)
            else:
                async with write_lock:
                    await run_in_threadpool(checkpoint_due, db, witness=witness, key_path=key_path)
        except KeyFileError as exc:
            log.warning("no periodic checkpoint of the evidence ledger: %s", exc)
        except Exception:
            log.exception("the periodic checkpoint of the evidence ledger failed; it tries again")
