"""The scan: windows of interactions read as one byte string per content field, flagged by
the query's Hyperscan prefilter, confirmed row by row with Python's `re`; in threads."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import hyperscan
import numpy as np
import orjson
from sqlalchemy import LargeBinary, Text, cast, func, literal, select
from sqlalchemy.orm import Session

from blastwall.detection.builtin.canary import TOKEN as CANARY_TOKEN
from blastwall.evidence.hunt.query import Query
from blastwall.telemetry.models import Interaction
from blastwall.telemetry.redact import redact_text

FIELDS = ("input_messages", "output_messages", "tool_arguments", "tool_result")
BATCH = 20_000
_FIELD_SEP = "\x02"
_ROW_SEP = b"\x01"
_UNESCAPES = ((b'\\"', b'"'), (b"\\n", b"\n"), (b"\\t", b"\t"), (b"\\r", b"\r"), (b"\\/", b"/"))


@dataclass(frozen=True)
class Found:
    """A confirmed match: the row, the field and an excerpt around the match (masked)."""

    interaction_id: int
    field: str
    excerpt: str


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif depth < 64 and isinstance(value, dict):
        for item in value.values():
            yield from _strings(item, depth + 1)
    elif depth < 64 and isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)


def _confirm(query: Query, interaction_id: int, joined: str) -> Found | None:
    for name, raw in zip(FIELDS, joined.split(_FIELD_SEP), strict=False):
        if not raw:
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = raw
        for text in _strings(value):
            match = query.search(text)
            if match is not None:
                return Found(interaction_id, name, excerpt_around(text, match.start(), match.end()))
    return None


def excerpt_around(text: str, start: int, end: int, context: int = 60) -> str:
    """About `context` characters either side of text[start:end], masked. The window is
    widened to whole words before masking, so that a cut never leaves part of an e-mail
    address or a number unmasked; canary tokens are masked too (shown once, at issue)."""
    begin, stop = max(0, start - context), min(len(text), end + context)
    floor, ceiling = max(0, begin - _WORD_SLACK), min(len(text), stop + _WORD_SLACK)
    while begin > floor and not text[begin - 1].isspace():
        begin -= 1
    while stop < ceiling and not text[stop].isspace():
        stop += 1
    masked = CANARY_TOKEN.sub("[CANARY]", redact_text(text[begin:stop]))
    return masked[: 2 * context + 280]


_WORD_SLACK = 120
"""How far a window may grow to reach the end of a word (a long token is cut after this)."""


def count(session: Session, query: Query) -> int:
    q = select(func.count()).select_from(Interaction)
    if query.system_id:
        q = q.where(Interaction.system_id == query.system_id)
    if query.since:
        q = q.where(Interaction.start_time >= query.since)
    return int(session.scalar(q) or 0)


def _content_column() -> Any:
    parts: list[Any] = []
    for index, name in enumerate(FIELDS):
        if index:
            parts.append(literal(_FIELD_SEP))
        parts.append(func.coalesce(cast(getattr(Interaction, name), Text), literal("")))
    expression = parts[0]
    for part in parts[1:]:
        expression = expression.op("||")(part)
    return expression


def _batch_query(session: Session, query: Query, after: int, upto: int) -> Any:
    """One row for the ids in (after, upto]: the row count, the ids joined by commas, and
    for each content field every row's JSON text joined by \x01 into one byte string. The
    aggregates consume the rows in one pass, so the n-th piece of each is the n-th id."""
    postgres = session.get_bind().dialect.name == "postgresql"
    sep = literal(_ROW_SEP.decode())
    columns: list[Any] = [func.count()]
    if postgres:
        columns.append(func.string_agg(cast(Interaction.id, Text), literal(",")))
    else:
        columns.append(func.group_concat(Interaction.id, literal(",")))
    for name in FIELDS:
        column = getattr(Interaction, name)
        if postgres:
            text = func.coalesce(cast(column, Text), literal(""))
            columns.append(func.convert_to(func.string_agg(text, sep), literal("UTF8")))
        else:  # SQLite keeps JSON as text already: no cast, no copy
            columns.append(
                cast(func.group_concat(func.coalesce(column, literal("")), sep), LargeBinary)
            )
    q = select(*columns).where(Interaction.id > after, Interaction.id <= upto)
    if query.system_id:
        q = q.where(Interaction.system_id == query.system_id)
    if query.since:
        q = q.where(Interaction.start_time >= query.since)
    return q


def _unescape(buffer: bytes) -> bytes:
    buffer = buffer.replace(b"\\\\", b"\x04")
    for escaped, plain in _UNESCAPES:
        buffer = buffer.replace(escaped, plain)
    return buffer.replace(b"\x04", b"\\")


def _end(ends: list[int], _id: int, _start: int, end: int, _flags: int, _context: object) -> None:
    ends.append(end - 1)


def _flagged_rows(query: Query, buffers: list[bytes]) -> set[int]:
    """The positions (0, 1, ...) of the rows of a window that the prefilter flags."""
    assert query.prefilter is not None
    # A scratch space of this call's own: windows are scanned by several threads at once.
    scratch = hyperscan.Scratch(query.prefilter)
    rows: set[int] = set()
    for buffer in buffers:
        if query.unescape:
            buffer = _unescape(buffer)
        ends: list[int] = []
        query.prefilter.scan(buffer, match_event_handler=partial(_end, ends), scratch=scratch)
        if ends:
            separators = np.flatnonzero(np.frombuffer(buffer, dtype=np.uint8) == _ROW_SEP[0])
            rows.update(int(i) for i in np.searchsorted(separators, np.array(ends)))
    return rows


def _window(
    read: Callable[[], Any], query: Query, after: int, upto: int
) -> tuple[int, list[Found]]:
    """Scan the interactions with ids in (after, upto]: rows scanned and matches."""
    with read() as session:
        rows, ids, *buffers = session.execute(_batch_query(session, query, after, upto)).one()
        if not rows:
            return 0, []
        if query.prefilter is None:
            flagged = [int(i) for i in ids.split(",")]
        else:
            positions = _flagged_rows(query, [bytes(b) for b in buffers])
            if positions:
                every = ids.split(",")
                flagged = [int(every[p]) for p in sorted(positions)]
            else:
                flagged = []
        texts = (
            session.execute(
                select(Interaction.id, _content_column()).where(Interaction.id.in_(flagged))
            ).all()
            if flagged
            else []
        )
    found = [hit for iid, text in sorted(texts) if (hit := _confirm(query, iid, text)) is not None]
    return rows, found


def scan(
    read: Callable[[], Any],
    query: Query,
    *,
    batch: int = BATCH,
    workers: int = 1,
) -> Iterator[tuple[int, list[Found]]]:
    """Scan every interaction in windows of `batch` ids, in id order; yield (rows scanned,
    matches) per window. `read` gives a context manager of a read-only session; with more
    than one worker, windows are scanned by that many threads at once (the database and
    Hyperscan release the GIL), each on its own session, and still yielded in order."""
    with read() as session:
        low, high = session.execute(
            select(func.min(Interaction.id), func.max(Interaction.id))
        ).one()
    if low is None:
        return
    windows = [(start, min(start + batch, high)) for start in range(low - 1, high, batch)]
    if workers <= 1:
        for after, upto in windows:
            yield _window(read, query, after, upto)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="hunt") as pool:
        pending: deque[Future[tuple[int, list[Found]]]] = deque()
        for after, upto in windows:
            pending.append(pool.submit(_window, read, query, after, upto))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
