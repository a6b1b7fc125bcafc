"""A hunt's query compiled: the regex that decides, and its Hyperscan prefilter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import hyperscan
from sqlalchemy.orm import Session

from blastwall.detection.builtin.canary import token_hash
from blastwall.detection.models import CanaryToken
from blastwall.errors import InvalidInput, NotFound, Problem
from blastwall.evidence.hunt.escapes import needs_unescape
from blastwall.inventory.models import System


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
