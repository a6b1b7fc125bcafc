"""Rule packs compiled once into a Hyperscan (Vectorscan) database.

A `PatternSet` scans a text against all its patterns in one pass and answers which matched
where. Offsets are in the UTF-8 bytes of the text (`Match.text` decodes a span back). Each
thread scans with its own scratch space, so one set serves concurrent requests.

`PatternSet.scan_re` runs the same patterns through Python's `re`, one after another: the
baseline `bench/detection_speed.py` compares against, and a check in the tests that both
engines agree.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import hyperscan

__all__ = ["Match", "PatternSet", "Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern of a pack. `name` says what it finds; `every` asks for every match of it
    (leakage: every card number), otherwise the first match of the rule is enough."""

    name: str
    pattern: str
    every: bool = False
    caseless: bool = True


@dataclass(frozen=True, slots=True)
class Match:
    rule: int
    start: int
    end: int

    def text(self, data: bytes) -> str:
        return data[self.start : self.end].decode("utf-8", "replace")


class PatternSet:
    """A compiled rule pack."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        if not rules:
            raise ValueError("a pattern set needs at least one rule")
        self.rules = tuple(rules)
        flags = []
        for rule in self.rules:
            flag = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SOM_LEFTMOST
            flag |= hyperscan.HS_FLAG_DOTALL
            if rule.caseless:
                flag |= hyperscan.HS_FLAG_CASELESS
            flags.append(flag)
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            self._db.compile(
                expressions=[r.pattern.encode() for r in self.rules],
                ids=list(range(len(self.rules))),
                elements=len(self.rules),
                flags=flags,
            )
        except hyperscan.CompilerError as exc:
            raise ValueError(f"a rule does not compile: {exc}") from None
        self._scratch = hyperscan.Scratch(self._db)
        self._local = threading.local()
        self._re: list[re.Pattern[str]] | None = None
        self._every = [r.every for r in self.rules]

    def _thread_scratch(self) -> hyperscan.Scratch:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch.clone()
        return scratch

    def scan(self, data: bytes) -> list[Match]:
        """The matches in the order Hyperscan reports them (by end offset): every match of
        an `every` rule, the first of the others."""
        found: list[Match] = []
        if not data:
            return found
        every = self._every
        latest: dict[int, int] = {}  # rule -> index in found of its latest match

        def on_match(rule: int, start: int, end: int, flags: int, context: object) -> None:
            at = latest.get(rule)
            if at is None:
                latest[rule] = len(found)
                found.append(Match(rule, start, end))
            elif every[rule]:
                # Hyperscan reports each end offset of a match: keep the longest per start.
                if found[at].start == start:
                    found[at] = Match(rule, start, end)
                else:
                    latest[rule] = len(found)
                    found.append(Match(rule, start, end))

        self._db.scan(data, match_event_handler=on_match, scratch=self._thread_scratch())
        return found

    def scan_re(self, text: str) -> list[tuple[int, int, int]]:
        """The same rules through Python's `re`: (rule, start, end) in characters."""
        if self._re is None:
            self._re = [
                re.compile(
                    _python_syntax(r.pattern), re.DOTALL | (re.IGNORECASE if r.caseless else 0)
                )
                for r in self.rules
            ]
        found: list[tuple[int, int, int]] = []
        for index, (rule, compiled) in enumerate(zip(self.rules, self._re, strict=True)):
            if rule.every:
                found.extend((index, m.start(), m.end()) for m in compiled.finditer(text))
            elif (m := compiled.search(text)) is not None:
                found.append((index, m.start(), m.end()))
        return found


def _python_syntax(pattern: str) -> str:
    """Hyperscan's (PCRE's) `\\x{HHHH}` code points as Python's `\\UHHHHHHHH`."""
    return re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", lambda m: f"\\U{int(m.group(1), 16):08x}", pattern)
