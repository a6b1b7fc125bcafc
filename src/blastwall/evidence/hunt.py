"""Retro-hunt: search every stored interaction's content for an attack's pattern or a leaked
value.

Method. Interactions are read in windows of `BATCH` ids. For each window the database
joins each content field of the rows (inputs, outputs, tool arguments, tool results — where
retrievals keep the documents they returned), as stored JSON text, into one byte string per
field, in one pass: Python does no per-row work. When the query could match a character
JSON escapes, the escapes of newlines, tabs, quotes and backslashes are undone in place, so
the text inside each JSON string reads as it was sent. Hyperscan scans each string
once with the query compiled in prefilter mode (anchors dropped: a superset of the real
matches). Each row it flags is then decoded and its string values are searched with
Python's `re`, which decides: the hunt's answers are exactly Python's regular-expression
semantics, per string value. A canary hunt looks for the token's shape with its known
prefix and keeps a match only when the token's SHA-256 is the canary's.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import hyperscan
import numpy as np
import orjson
from sqlalchemy import LargeBinary, Text, cast, func, literal, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.db import Database, utcnow
from blastwall.detection.builtin.canary import TOKEN as CANARY_TOKEN
from blastwall.detection.builtin.canary import token_hash
from blastwall.detection.models import CanaryToken
from blastwall.errors import InvalidInput, NotFound, Problem
from blastwall.evidence.models import Hunt, HuntMatch
from blastwall.evidence.schemas import HuntIn
from blastwall.inventory.models import System
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.settings import get_settings
from blastwall.telemetry.models import Interaction
from blastwall.telemetry.redact import redact_text
from blastwall_guard.names import tool_key

__all__ = [
    "BATCH",
    "FIELDS",
    "MAX_MATCHES",
    "Found",
    "Query",
    "compile_query",
    "create_hunt",
    "get_hunt",
    "list_hunts",
    "list_matches",
    "run_hunt",
    "scan",
]

FIELDS = ("input_messages", "output_messages", "tool_arguments", "tool_result")
BATCH = 20_000
MAX_MATCHES = 10_000
_FIELD_SEP = "\x02"
_ROW_SEP = b"\x01"
_UNESCAPES = ((b'\\"', b'"'), (b"\\n", b"\n"), (b"\\t", b"\t"), (b"\\r", b"\r"), (b"\\/", b"/"))


@dataclass(frozen=True)
class Query:
    """A compiled hunt: the deciding regex, the Hyperscan prefilter (None: scan in Python),
    and for canaries the token hash a match must have."""

    mode: str
    regex: re.Pattern[str]
    prefilter: hyperscan.Database | None
    canary_hash: str | None = None
    system_id: str | None = None
    since: datetime | None = None
    unescape: bool = True

    @property
    def method(self) -> str:
        return "hyperscan-prefilter+re" if self.prefilter is not None else "python-re"

    def search(self, text: str) -> re.Match[str] | None:
        for match in self.regex.finditer(text):
            if self.canary_hash is None or token_hash(match.group()) == self.canary_hash:
                return match
        return None


def _drop_anchors(pattern: str) -> str:
    """The pattern without ^, $, \\A, \\Z outside character classes: it matches wherever
    the original does (and more), as a prefilter must."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            pair = pattern[i : i + 2]
            if in_class or pair not in ("\\A", "\\Z", "\\z", "\\b", "\\B"):
                out.append(pair)
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            out.append(ch)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("]")
                i += 1
            i += 1
            continue
        elif ch in "^$":
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _prefilter(pattern: str, caseless: bool) -> hyperscan.Database | None:
    flags = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_UTF8
    flags |= hyperscan.HS_FLAG_ALLOWEMPTY
    if caseless:
        flags |= hyperscan.HS_FLAG_CASELESS
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(
            expressions=[_drop_anchors(pattern).encode()], ids=[0], elements=1, flags=[flags]
        )
    except (hyperscan.CompilerError, hyperscan.error):
        return None
    return db


def _hs_literal(text: str) -> str:
    return "".join(c if c.isalnum() or ord(c) > 127 else f"\\x{ord(c):02x}" for c in text)


def compile_query(
    session: Session,
    *,
    mode: str,
    query: str,
    system_id: str | None = None,
    since: datetime | None = None,
) -> Query:
    """Check and compile a hunt's query; InvalidInput names what is wrong with it."""
    if system_id is not None and session.get(System, system_id) is None:
        raise InvalidInput(
            f"No AI system '{system_id}'.",
            [Problem("system", "not in the inventory; `blastwall inventory list` shows the ids")],
        )
    if mode == "text":
        regex = re.compile(re.escape(query))
        return Query(
            mode,
            regex,
            _prefilter(_hs_literal(query), False),
            None,
            system_id,
            since,
            needs_unescape(regex),
        )
    if mode == "canary":
        row = session.get(CanaryToken, int(query))
        if row is None:
            raise NotFound(f"No canary token {query}. `blastwall canary list` shows them.")
        prefix = re.escape(row.prefix.lower())
        regex = re.compile(f"{prefix}[0-9a-f]{{{28 - len(row.prefix)}}}", re.IGNORECASE)
        return Query(
            mode,
            regex,
            _prefilter(regex.pattern, True),
            row.token_hash,
            system_id,
            since,
            needs_unescape(regex),
        )
    try:
        regex = re.compile(query)
    except re.error as exc:
        raise InvalidInput(
            "The hunt's pattern is not a valid regular expression.",
            [Problem("pattern", f"{exc} (Python `re` syntax)")],
        ) from None
    if regex.search("") is not None:
        raise InvalidInput(
            "The pattern matches the empty string, so it would match every interaction.",
            [Problem("pattern", "make it require at least one character")],
        )
    caseless = bool(regex.flags & re.IGNORECASE)
    inline = re.sub(r"^\(\?[aiLmsux]+\)", "", query)
    return Query(
        mode, regex, _prefilter(inline, caseless), None, system_id, since, needs_unescape(regex)
    )


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


_ESCAPED = frozenset({ord('"'), ord("\\"), *range(32)})


def _can_match_escaped(tree: Any) -> bool:
    """Whether a parsed regex could match a character that JSON text escapes (a quote, a
    backslash, a control character): only then must a batch be unescaped before the scan.
    Anything not understood counts as yes."""
    for op, arg in tree:
        name = str(op)
        if name == "LITERAL":
            if arg in _ESCAPED:
                return True
        elif name == "IN":
            if _class_can_match_escaped(arg):
                return True
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if _can_match_escaped(arg[2]):
                return True
        elif name == "SUBPATTERN":
            if _can_match_escaped(arg[3]):
                return True
        elif name == "BRANCH":
            if any(_can_match_escaped(branch) for branch in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _can_match_escaped(arg[1]):
                return True
        elif name == "ATOMIC_GROUP":
            if _can_match_escaped(arg):
                return True
        elif name != "AT":
            return True  # ANY, NOT_LITERAL, GROUPREF, ...: assume it can
    return False


def _class_can_match_escaped(items: Any) -> bool:
    for item_op, item in items:
        kind = str(item_op)
        if kind == "LITERAL" and item in _ESCAPED:
            return True
        if kind == "RANGE" and any(item[0] <= c <= item[1] for c in (0, 31, 0x22, 0x5C)):
            return True
        if kind == "CATEGORY" and str(item) not in ("CATEGORY_DIGIT", "CATEGORY_WORD"):
            return True
        if kind == "NEGATE":
            return True
    return False


def needs_unescape(regex: re.Pattern[str]) -> bool:
    """Whether matches of `regex` may involve characters that JSON escapes."""
    try:
        tree = re._parser.parse(regex.pattern, regex.flags)  # type: ignore[attr-defined]
    except Exception:
        return True
    return _can_match_escaped(tree)


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


# --- stored hunts ---------------------------------------------------------------------------


def create_hunt(session: Session, *, data: HuntIn, actor: Principal) -> Hunt:
    """Check and store a hunt (state queued); `run_hunt` runs it."""
    actor.require(Permission.see_content)
    compile_query(
        session, mode=data.mode.value, query=data.query, system_id=data.system, since=data.since
    )
    row = Hunt(
        mode=data.mode.value,
        query=data.query,
        system_id=data.system,
        since=data.since,
        state="queued",
        created_by=actor.name,
        created_at=utcnow(),
        summary={},
    )
    session.add(row)
    session.commit()
    return row


def get_hunt(session: Session, *, hunt_id: int, principal: Principal) -> Hunt:
    principal.require(Permission.see_content)
    row = session.get(Hunt, hunt_id)
    if row is None:
        raise NotFound(f"No hunt {hunt_id}. `GET /api/v1/hunts` lists them.")
    return row


def list_hunts(
    session: Session, *, principal: Principal, limit: int, cursor: str | None = None
) -> tuple[list[Hunt], str | None]:
    """Hunts, newest first."""
    principal.require(Permission.see_content)
    query = select(Hunt).order_by(Hunt.id.desc())
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Hunt.id < after[0])
    return fetch_page(session, query, limit=limit)


def list_matches(
    session: Session, *, hunt_id: int, principal: Principal, limit: int, cursor: str | None = None
) -> tuple[list[HuntMatch], str | None]:
    """A hunt's matches in interaction order."""
    hunt = get_hunt(session, hunt_id=hunt_id, principal=principal)
    query = select(HuntMatch).where(HuntMatch.hunt_id == hunt.id)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(HuntMatch.id > after[0])
    return fetch_page(session, query.order_by(HuntMatch.id), limit=limit)


def _store_matches(session: Session, hunt: Hunt, found: list[Found]) -> None:
    by_id = {f.interaction_id: f for f in found}
    rows = session.execute(
        select(
            Interaction.id,
            Interaction.trace_id,
            Interaction.conversation_id,
            Interaction.user_id,
            Interaction.system_id,
            Interaction.tool_name,
            Interaction.start_time,
        ).where(Interaction.id.in_(list(by_id)))
    ).all()
    for iid, trace, conversation, user, system, tool, at in sorted(rows):
        hit = by_id[iid]
        session.add(
            HuntMatch(
                hunt_id=hunt.id,
                interaction_id=iid,
                field=hit.field,
                excerpt=hit.excerpt,
                trace_id=trace,
                conversation_id=conversation,
                user_id=user,
                system_id=system,
                tool_name=tool,
                at=at,
            )
        )


def _summary(session: Session, hunt: Hunt) -> dict[str, Any]:
    """Conversations, users and tool side effects (tool calls in the matched traces)."""
    matches = HuntMatch.hunt_id == hunt.id
    conversations = session.execute(
        select(HuntMatch.conversation_id, func.count())
        .where(matches, HuntMatch.conversation_id.is_not(None))
        .group_by(HuntMatch.conversation_id)
        .order_by(func.count().desc(), HuntMatch.conversation_id)
        .limit(1000)
    ).all()
    # A tool call or retrieval seldom carries the user: take the user of its trace then.
    trace_user = (
        select(Interaction.user_id)
        .where(Interaction.trace_id == HuntMatch.trace_id, Interaction.user_id.is_not(None))
        .order_by(Interaction.id)
        .limit(1)
        .scalar_subquery()
    )
    user = func.coalesce(HuntMatch.user_id, trace_user)
    users = session.execute(
        select(user, func.count())
        .where(matches, user.is_not(None))
        .group_by(user)
        .order_by(func.count().desc(), user)
        .limit(1000)
    ).all()
    traces = select(HuntMatch.trace_id).where(matches).distinct()
    spellings = session.execute(
        select(
            Interaction.tool_name,
            func.count(),
            func.count(Interaction.error_type),
            func.min(Interaction.id),
        )
        .where(Interaction.trace_id.in_(traces), Interaction.operation == "execute_tool")
        .group_by(Interaction.tool_name)
        .order_by(func.count().desc(), func.min(Interaction.id))
        .limit(1000)
    ).all()
    return {
        "conversations": [{"id": c, "matches": n} for c, n in conversations],
        "users": [{"id": u, "matches": n} for u, n in users],
        "tool_side_effects": _by_tool(spellings)[:200],
    }


def _by_tool(spellings: Sequence[Any]) -> list[dict[str, Any]]:
    """Tool calls per tool, its spellings (`issue_refund`, `Issue-Refund`) counted as one
    (`tool_key`) under the most used; `failed`: calls whose span carries an error type."""
    tools: dict[str | None, dict[str, Any]] = {}
    for name, calls, failed, first in spellings:  # most calls first
        key = tool_key(name) if name is not None else None
        if key not in tools:
            tools[key] = {"tool": name, "names": [], "calls": 0, "failed": 0}
            tools[key]["first_interaction"] = first
        tool = tools[key]
        tool["names"].append(name)
        tool["calls"] += calls
        tool["failed"] += failed
        tool["first_interaction"] = min(tool["first_interaction"], first)
    for tool in tools.values():
        tool["names"] = sorted(n for n in tool["names"] if n is not None)
    return sorted(tools.values(), key=lambda t: (-t["calls"], t["first_interaction"]))


def run_hunt(
    db: Database,
    *,
    hunt_id: int,
    progress: Callable[[int, int], None] | None = None,
    batch: int = BATCH,
    workers: int | None = None,
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
                workers=workers or get_settings().hunt_workers,
            ):
                room = MAX_MATCHES - hunt.match_count
                _store_matches(session, hunt, found[:room])
                hunt.scanned += scanned
                hunt.match_count += min(len(found), room)
                session.commit()
                if progress:
                    progress(hunt.scanned, hunt.total)
                if len(found) >= room:
                    hunt.error = f"stopped after {MAX_MATCHES} matches; narrow the query"
                    break
            hunt.summary = _summary(session, hunt)
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
