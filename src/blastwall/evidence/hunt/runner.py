"""The hunt's runner: a worker that scans and commits its progress after each window."""

from __future__ import annotations

import logging
from collections.abc import Callable

from blastwall.db import Database, utcnow
from blastwall.errors import NotFound
from blastwall.evidence.hunt.query import compile_query
from blastwall.evidence.hunt.scan import BATCH, count, scan
from blastwall.evidence.hunt.store import store_matches, summary
from blastwall.evidence.models import Hunt

log = logging.getLogger("blastwall.evidence.hunt")

MAX_MATCHES = 10_000


def run_hunt(
    db: Database,
    *,
    hunt_id: int,
    progress: Callable[[int, int], None] | None = None,
    batch: int = BATCH,
    workers: int = 1,
) -> Hunt:
    """Run a stored hunt to the end, recording progress after each batch. Reads happen in
    read-only sessions, so a long hunt does not hold the database's write lock."""
    with db.session() as session:
        hunt = session.get(Hunt, hunt_id)
        if hunt is None:
            raise NotFound(f"No hunt {hunt_id}.")
        try:
            query = compile_query(
                session,
                mode=hunt.mode,
                query=hunt.query,
                system_id=hunt.system_id,
                since=hunt.since,
            )
            hunt.total = count(session, query)
            hunt.state, hunt.method, hunt.scanned, hunt.match_count = "running", query.method, 0, 0
            session.commit()
            if progress:
                progress(0, hunt.total)
            for scanned, found in scan(
                lambda: db.session(read_only=True),
                query,
                batch=batch,
                workers=workers,
            ):
                room = MAX_MATCHES - hunt.match_count
                store_matches(session, hunt, found[:room])
                hunt.scanned += scanned
                hunt.match_count += min(len(found), room)
                session.commit()
                if progress:
                    progress(hunt.scanned, hunt.total)
                if len(found) >= room:
                    hunt.error = f"stopped after {MAX_MATCHES} matches; narrow the query"
                    break
            hunt.summary = summary(session, hunt)
            hunt.state = "done"
        except Exception as exc:
            session.rollback()
            hunt.state, hunt.error = "failed", f"{type(exc).__name__}: {exc}"
            hunt.finished_at = utcnow()
            session.commit()
            raise
        hunt.finished_at = utcnow()
        session.commit()
        return hunt


def run_in_background(db: Database, hunt_id: int, workers: int) -> None:
    """Run a hunt to its end as a background task after the request that started it (the
    API's and the web interface's): a failure is recorded on the hunt by `run_hunt`, and
    logged here, since no one waits for the task."""
    try:
        run_hunt(db, hunt_id=hunt_id, workers=workers)
    except Exception:
        log.exception("hunt %s failed", hunt_id)
