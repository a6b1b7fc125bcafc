"""What the leakage detector looks for: the kinds of data, and the candidates of each
(Hyperscan patterns, runs of base64 characters) that its checks then confirm or drop."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, get_args

from blastwall.detection.patterns import PatternSet, Rule

Kind = Literal["private_key", "api_key", "email", "iban", "card", "ssn", "phone", "secret"]
KINDS: tuple[Kind, ...] = get_args(Kind)
"""The kinds of data, in the order they claim characters."""

# (kind, Hyperscan pattern, caseless): candidates, checked in Python. Hyperscan reports every
# end offset of a match, so an open-ended pattern ends with what may not continue it (`_END`,
# `_NUMBER_END`): one report per value instead of one per character, and a few per row of a
# table of numbers. The checks drop that last character again.
_END = r"(?:[^A-Za-z0-9_-]|$)"
_NUMBER_END = r"(?:[^\d \-]|[ -][^\d]|[ -]?$)"
_PATTERNS: tuple[tuple[Kind, str, bool], ...] = (
    ("private_key", r"-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----", False),
    ("api_key", r"sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}" + _END, False),
    ("api_key", r"(?:AKIA|ASIA)[0-9A-Z]{16}", False),
    ("api_key", r"gh[pousr]_[A-Za-z0-9]{36,}" + _END, False),
    ("api_key", r"github_pat_[A-Za-z0-9_]{22,}" + _END, False),
    ("api_key", r"glpat-[A-Za-z0-9_-]{20,}" + _END, False),
    ("api_key", r"xox[abposr]-[A-Za-z0-9-]{10,}" + _END, False),
    ("api_key", r"AIza[0-9A-Za-z_-]{35}", False),
    ("api_key", r"[sr]k_(?:live|test)_[0-9A-Za-z]{16,}" + _END, False),
    ("api_key", r"hf_[A-Za-z0-9]{30,}" + _END, False),
    ("api_key", r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}" + _END, False),
    ("api_key", r"npm_[A-Za-z0-9]{36}", False),
    ("api_key", r"pypi-[A-Za-z0-9_-]{50,}" + _END, False),
    ("api_key", r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*" + _END, False),
    ("api_key", r"[Bb]earer [A-Za-z0-9._~+/=-]{20,}(?:[^A-Za-z0-9._~+/=-]|$)", False),
    # the local part is read back from the "@" in Python
    ("email", r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}" + _END, False),
    ("iban", r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}", False),  # the rest: _IBAN_REST, in Python
    ("card", r"\d(?:[ -]?\d){12,18}" + _NUMBER_END, False),
    ("ssn", r"\d{3}-\d{2}-\d{4}", False),
    (
        "phone",
        r"\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}(?:[^\d .(-]|[ .-][^\d(]|[ .-]?$)",
        False,
    ),
    ("phone", r"\(\d{3}\) ?\d{3}[ .-]\d{4}", False),
    ("phone", r"(?:1[ .-])?\d{3}[ .-]\d{3}[ .-]\d{4}", False),
    ("phone", r"0\d{1,4}[ -]\d{3,4}[ -]?\d{3,4}(?:[^\d]|$)", False),
)
MAX_SECRET = 512
_BASE64 = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/_-")
_RUN_MAP = bytes(97 if byte in _BASE64 else 32 for byte in range(256))
"""Base64 characters (and "_", "-") to "a", every other byte to " "."""

Span = tuple[int, int]
"""Start and end in the scanned bytes."""
Hit = tuple[int, int, str]
"""A value that passed its kind's checks: start, end, the value."""


@lru_cache(maxsize=16)
def pattern_set(kinds: tuple[Kind, ...]) -> PatternSet | None:
    """One compiled set per choice of kinds, shared by the systems that make it."""
    rules = [Rule(k, pattern, every=True, caseless=case) for k, pattern, case in _PATTERNS]
    chosen = [rule for rule in rules if rule.name in kinds]
    return PatternSet(chosen) if chosen else None


def runs(data: bytes, needle: bytes) -> list[Span]:
    """Runs of base64 characters at least `len(needle)` long. Not in Hyperscan: a pattern
    for them reports every end offset of a long run (a URL path, an inline image), and a
    translated copy searched with `bytes.find` costs about a microsecond for 2 KB."""
    mapped = data.translate(_RUN_MAP)
    spans: list[Span] = []
    start = mapped.find(needle)
    while start >= 0:
        end = mapped.find(b" ", start)
        end = len(mapped) if end < 0 else end
        spans.append((start, end))
        start = mapped.find(needle, end)
    return spans
