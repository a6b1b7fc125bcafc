"""Sensitive data in what a model answers: personal data, payment data and secrets.

`LeakageDetector` scans the outputs of an interaction, and the arguments of the tool calls
the model asked for (a tool call is a way out of the system too), for e-mail addresses,
phone numbers, payment cards, IBANs, US social security numbers, API keys and tokens of
common providers, private keys and other high-entropy secrets. It answers at most one
finding per interaction, with the number of distinct values of each kind.

One Hyperscan pass finds the candidates (and `bytes.find` on a translated copy the long runs
of base64 characters that may be secrets); Python then checks each one:

* cards: 13-19 digits with a card brand's prefix and length, and the Luhn check. Digits in
  groups must be grouped like a card (a first group of four); a longer grouped number that
  merely contains a valid card, or the decimals of a number, are not one;
* IBANs: the ISO 13616 mod-97 check, trailing words trimmed until it passes;
* US SSNs: ``AAA-GG-SSSS`` without the never-issued areas, groups and serials (nine digits
  without dashes are too ambiguous to report);
* phones: international (``+CC …``), North American (``(415) 555-0132``, ``415-555-0132``,
  one separator throughout) or national with a trunk ``0`` (``020 7946 0958``), 7-15
  digits, not part of a longer number. ISO dates, version strings and IP addresses have
  none of these shapes;
* API keys: by provider prefix (OpenAI, Anthropic, AWS, GitHub, GitLab, Slack, Google,
  Stripe, Hugging Face, SendGrid, npm, PyPI), JWTs and ``Bearer`` tokens, the random part
  not a placeholder (``sk-proj-XXXX…``, ``sk-your-key-here``);
* private keys: a PEM ``BEGIN … PRIVATE KEY`` line followed by key material (the line
  alone, as in an explanation of the format, is not a leak);
* other secrets: runs of base64 characters `min_secret_length` or longer, with upper case,
  lower case and digits, an entropy of `entropy_threshold` bits per character or more, and
  mostly not words, numbers or paths (``getUserAccountBalance2024`` is an identifier).
  Hexadecimal strings are never secrets here: UUIDs, git commit ids and SHA-256 digests are
  common in normal answers, and a 40-hex string is more often a commit than a key (keys
  that are hex are found by their provider's prefix, if at all). Runs over 512 characters
  are encoded data (an inline image), not a secret.

Where two kinds claim the same characters the first in `KINDS` wins (an IBAN's digits are
not also a phone number). Severity follows the kind (e-mail and phone: warning, the rest:
high) and the system's data: where its inventory lists personal, confidential or restricted
data sources, e-mail and phone become high; with restricted data the high kinds become
critical. Allowlist entries are applied to each value here (an allowlisted support address
does not hide a card in the same answer), so the finding's `matched` is left empty.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import ClassVar, Literal, get_args

from pydantic import Field

from blastwall.detection.base import Detector, DetectorConfig, Finding, Item, SystemContext
from blastwall.detection.base import excerpt as cut_excerpt
from blastwall.detection.patterns import PatternSet, Rule
from blastwall.telemetry.messages import as_text
from blastwall.telemetry.redact import iban_valid, luhn_valid, redact_text

__all__ = ["KINDS", "LeakageConfig", "LeakageDetector"]

Kind = Literal["private_key", "api_key", "email", "iban", "card", "ssn", "phone", "secret"]
KINDS: tuple[Kind, ...] = get_args(Kind)
"""The kinds of data, in the order they claim characters."""

# kind: (its name in a summary, its mask in an excerpt, the confidence when found)
_ABOUT: dict[str, tuple[str, str, float]] = {
    "private_key": ("private key", "[PRIVATE KEY]", 0.95),  # header and key material
    "api_key": ("API key or token", "[SECRET]", 0.85),  # a provider's prefix
    "email": ("e-mail address", "[EMAIL]", 0.85),
    "iban": ("IBAN", "[IBAN]", 0.95),  # mod-97 checked
    "card": ("payment card number", "[CARD]", 0.95),  # brand and Luhn checked
    "ssn": ("US social security number", "[SSN]", 0.6),
    "phone": ("phone number", "[PHONE]", 0.6),
    "secret": ("high-entropy secret", "[SECRET]", 0.6),
}
_HIGH_CLASS = frozenset({"private_key", "api_key", "iban", "card", "ssn", "secret"})
_SEVERITIES = ("info", "warning", "high", "critical")
_CHANNELS = {"output": "output", "tool_arguments": "tool-call arguments"}
_CHANNEL_FLAGS = ((False, "output"), (True, "tool_arguments"))  # (in tool calls?, channel)

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
_MAX_SECRET = 512
_KEY_PREFIX = re.compile(
    r"(?i:bearer )|sk-(?:proj-|svcacct-|admin-|ant-)?|gh[pousr]_|github_pat_|glpat-"
    r"|xox[abposr]-|[sr]k_(?:live|test)_|hf_|SG\.|npm_|pypi-"
)
"""The fixed start of a provider's key, left out when judging whether the rest is random."""
_KEY_MATERIAL = re.compile(rb"[A-Za-z0-9+/=]{32}")
_KEY_LINES = re.compile(rb"[A-Za-z0-9+/=\r\n\\]*")  # "\\n" in JSON-encoded arguments
_DIGIT_RUN = re.compile(rb"[0-9]+")
_FOUR_DIGITS = re.compile(rb"[0-9]{4}")
_NUMBER_MAP = bytes(100 if byte in b"0123456789 -" else 120 for byte in range(256))
"""Digits, spaces and dashes to "d", every other byte to "x"."""
_IBAN_REST = re.compile(rb"(?: ?[A-Z0-9]{4}){1,6}(?: ?[A-Z0-9]{1,4})?")
_PARTS = re.compile(r"[^/_+=-]+")
_WORDS = re.compile(r"[A-Z]?[a-z]{3,}|[A-Z]{4,}(?![a-z])|[0-9]{3,}")

_DIGITS = frozenset(b"0123456789")
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_WORD = _ALNUM | {ord("_")}
_KEY_BODY = _WORD | {ord("-")}
_SEPARATORS = frozenset(b" .-")
_EMAIL_LOCAL = _ALNUM | frozenset(b"._%+-")
_TOKEN = _KEY_BODY | frozenset(b".~+/=")
_PHONE_END = _DIGITS | {ord(")")}
_RUN_MAP = bytes(97 if byte in _ALNUM or byte in b"+/_-" else 32 for byte in range(256))
"""Base64 characters (and "_", "-") to "a", every other byte to " "."""
_HEX = frozenset("0123456789abcdefABCDEF-")
_IMAGE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tiff"})

Span = tuple[int, int]
"""Start and end in the scanned bytes."""
Hit = tuple[int, int, str]
"""A value that passed its kind's checks: start, end, the value."""


class LeakageConfig(DetectorConfig):
    kinds: list[Kind] = Field(
        default_factory=lambda: list(KINDS),
        description="The kinds of data to look for: " + ", ".join(KINDS) + ".",
    )
    entropy_threshold: float = Field(
        default=4.0,
        ge=0.0,
        le=8.0,
        description="Shannon entropy, in bits per character, from which a run of base64 "
        "characters counts as a secret.",
    )
    min_secret_length: int = Field(
        default=24, ge=8, le=_MAX_SECRET, description="Shortest run counted as a secret."
    )
    min_count: int = Field(
        default=1, ge=1, description="Distinct values, all kinds together, before a finding."
    )


@lru_cache(maxsize=16)
def _pattern_set(kinds: tuple[Kind, ...]) -> PatternSet | None:
    """One compiled set per choice of kinds, shared by the systems that make it."""
    rules = [Rule(k, pattern, every=True, caseless=case) for k, pattern, case in _PATTERNS]
    chosen = [rule for rule in rules if rule.name in kinds]
    return PatternSet(chosen) if chosen else None


def _runs(data: bytes, needle: bytes) -> list[Span]:
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


class LeakageDetector(Detector):
    """Personal data, payment data and secrets in outputs and tool-call arguments."""

    id: ClassVar[str] = "sensitive_data"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "Sensitive data in model outputs and tool-call arguments: e-mail, phone, payment "
        "cards, IBAN, US SSN, API keys, private keys and high-entropy secrets."
    )
    Config: ClassVar[type[DetectorConfig]] = LeakageConfig

    def __init__(self, config: DetectorConfig, context: SystemContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, LeakageConfig)
        self.settings = config
        self._kinds = tuple(kind for kind in KINDS if kind in config.kinds)
        self._patterns = _pattern_set(tuple(k for k in self._kinds if k != "secret"))
        self._needle = b"a" * config.min_secret_length if "secret" in self._kinds else b""
        self._allowlist = [entry.lower() for entry in config.allowlist if entry]
        self._raise = _sensitivity_raise(context)

    def detect(self, item: Item) -> list[Finding]:
        if not (item.outputs or item.tool_calls) or not self._kinds:
            return []
        data = "\n".join(item.outputs).encode("utf-8", "replace")
        tool_from = -1  # where the tool-call arguments start in data
        if item.tool_calls:
            arguments = "\n".join(
                as_text(call.arguments) for call in item.tool_calls if call.arguments is not None
            )
            tool_from = len(data) + 1
            data = data + b"\n" + arguments.encode("utf-8", "replace")
        candidates: dict[str, list[Span]] = {}
        if self._patterns is not None:
            rules = self._patterns.rules
            for match in self._patterns.scan(data):
                candidates.setdefault(rules[match.rule].name, []).append((match.start, match.end))
        if self._needle and (runs := _runs(data, self._needle)):
            candidates["secret"] = runs
        if not candidates:
            return []
        hits = self._validate(data, candidates)
        return self._finding(data, hits, tool_from) if hits else []

    def _validate(
        self, data: bytes, candidates: dict[str, list[Span]]
    ) -> list[tuple[Kind, int, int, str]]:
        """The values that pass their kind's checks, none overlapping another, in the
        order of `KINDS`, less the allowlisted ones."""
        starts: list[int] = []  # the claimed spans, in order; they do not overlap
        ends: list[int] = []
        hits: list[tuple[Kind, int, int, str]] = []
        for kind in self._kinds:
            spans = candidates.get(kind)
            if not spans:
                continue
            check = self._secrets if kind == "secret" else _CHECKS[kind]
            for start, end, value in sorted(check(data, spans), key=lambda h: (h[0], -h[1])):
                at = bisect_right(starts, start)
                if (at and ends[at - 1] > start) or (at < len(starts) and starts[at] < end):
                    continue
                starts.insert(at, start)  # allowlisted, it still claims its characters
                ends.insert(at, end)
                lowered = value.lower()
                if not any(entry in lowered for entry in self._allowlist):
                    hits.append((kind, start, end, value))
        return hits

    def _secrets(self, data: bytes, spans: list[Span]) -> list[Hit]:
        found: list[Hit] = []
        for start, stop in spans:
            run = data[start:stop]
            if stop - start > _MAX_SECRET or run.islower() or run.isupper() or run.isdigit():
                continue  # encoded data; one case only (words, hexadecimal) or none
            token = run.decode("ascii")
            if data[max(0, start - 7) : start] == b"base64," or _at(data, start - 1) == 46:
                continue  # a data: URL; a host name (46 is ".")
            if _at(data, stop) == 46 and _at(data, stop + 1) in _ALNUM:
                continue  # a file or host name: name.wav, nag.co.uk
            if (
                _looks_random(token, classes=3)
                and _entropy(token) >= self.settings.entropy_threshold
                and _wordiness(token) < 0.5
            ):
                found.append((start, stop, token))
        return found

    def _finding(
        self, data: bytes, hits: list[tuple[Kind, int, int, str]], tool_from: int
    ) -> list[Finding]:
        values: dict[Kind, set[str]] = {}
        for kind, _, _, value in hits:
            values.setdefault(kind, set()).add(_normalise(kind, value))
        counts = {kind: len(values[kind]) for kind in KINDS if kind in values}
        if sum(counts.values()) < self.settings.min_count:
            return []
        in_tools = {tool_from >= 0 and start >= tool_from for _, start, _, _ in hits}
        channels = [name for flag, name in _CHANNEL_FLAGS if flag in in_tools]
        main = max(counts, key=lambda kind: (self._severity(kind), _ABOUT[kind][2]))
        listed = ", ".join(f"{_ABOUT[kind][0]} ({count})" for kind, count in counts.items())
        where = " and ".join(_CHANNELS[name] for name in channels)
        return [
            Finding(
                kind="sensitive_data_in_output",
                archetype="data_exfiltration",
                severity=_SEVERITIES[self._severity(main)],
                confidence=max(_ABOUT[kind][2] for kind in counts),
                summary=f"Sensitive data in the {where}: {listed}",
                excerpt=_masked_excerpt(data, hits),
                owasp=("LLM02:2025",),
                atlas=("AML.T0057",),
                attributes={"types": counts, "channels": channels},
                key=main,
            )
        ]

    def _severity(self, kind: str) -> int:
        """Index in `_SEVERITIES`: warning or high by kind, raised by the system's data."""
        base = 2 if kind in _HIGH_CLASS else 1
        if self._raise == 2 or (self._raise == 1 and base == 1):
            return min(base + 1, 3)
        return base


def _sensitivity_raise(context: SystemContext) -> int:
    """0: nothing sensitive declared; 1: personal or confidential data; 2: restricted."""
    if context.spec is None:
        return 0
    levels = {str(source.sensitivity) for source in context.spec.components.data_sources}
    if "restricted" in levels:
        return 2
    return 1 if levels & {"personal", "confidential"} else 0


def _normalise(kind: str, value: str) -> str:
    """The value as counted: two spellings of one card are one card."""
    if kind in ("card", "ssn", "phone"):
        return "".join(char for char in value if char.isdigit())
    if kind == "iban":
        return value.replace(" ", "").upper()
    return value.lower() if kind == "email" else value


def _masked_excerpt(data: bytes, hits: list[tuple[Kind, int, int, str]]) -> str:
    """The text around the first value with every value found there masked, then through
    `redact_text` for what the masks do not cover."""
    first = min(hits, key=lambda hit: hit[1])
    low, high = max(0, first[1] - 300), min(len(data), first[2] + 300)
    pieces: list[str] = []
    position, size, mark = low, 0, (0, 0)
    near = [hit for hit in hits if hit[2] > low and hit[1] < high]
    for kind, start, end, _ in sorted(near, key=lambda hit: hit[1]):
        start, end = max(start, low), min(end, high)
        pieces.append(data[position:start].decode("utf-8", "ignore"))
        size += len(pieces[-1])
        mask = _ABOUT[kind][1]
        pieces.append(mask)
        if start == first[1]:
            mark = (size, size + len(mask))
        size += len(mask)
        position = end
    pieces.append(data[position:high].decode("utf-8", "ignore"))
    return redact_text(cut_excerpt("".join(pieces), *mark))


# --- the checks of each kind: candidate spans in, (start, end, value) out -----------------


def _strip_end(data: bytes, start: int, end: int, keep: frozenset[int]) -> int:
    """The end of a match without the characters after the value that ended it."""
    while end > start and data[end - 1] not in keep:
        end -= 1
    return end


def _at(data: bytes, index: int) -> int:
    """The byte at `index`, 0 outside the data."""
    return data[index] if 0 <= index < len(data) else 0


def _private_keys(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for start, end in spans:
        material = _KEY_MATERIAL.search(data, end, end + 200)
        if material is None:
            continue  # the header alone
        close = data.find(b"-----END", end, end + 20_000)
        if close >= 0:
            stop = data.find(b"-----", close + 8)
            stop = stop + 5 if stop >= 0 else close + 8
        else:  # cut short: the key material that follows
            lines = _KEY_LINES.match(data, material.end())
            stop = lines.end() if lines else material.end()
        found.append((start, stop, data[start:end].decode("ascii")))
    return found


def _api_keys(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for start, end in spans:
        end = _strip_end(data, start, end, _TOKEN)
        while end > start and data[end - 1] == 46:  # a full stop after the key
            end -= 1
        if _at(data, start - 1) in _KEY_BODY or _at(data, end) in _ALNUM:
            continue
        value = data[start:end].decode("ascii")
        prefix = _KEY_PREFIX.match(value)
        if _looks_random(value[prefix.end() :] if prefix else value, classes=2):
            found.append((start, end, value))
    return found


def _emails(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for at, end in spans:
        end = _strip_end(data, at, end, _ALNUM)
        start = at
        while start > max(0, at - 64) and data[start - 1] in _EMAIL_LOCAL:
            start -= 1
        while start < at and data[start] == 46:  # a local part does not start with "."
            start += 1
        if start == at or _at(data, end) in _KEY_BODY or _at(data, end) == ord("("):
            continue  # no local part; L@D.conj(): a method call
        value = data[start:end].decode("ascii")
        if value.rsplit(".", 1)[-1].lower() not in _IMAGE_SUFFIXES:  # logo@2x.png
            found.append((start, end, value))
    return found


def _ibans(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    covered = 0
    for start, end in sorted(spans):
        if start < covered or _at(data, start - 1) in _ALNUM:
            continue  # inside the previous candidate (hostile "DE89 DE89 …"); inside a word
        rest = _IBAN_REST.match(data, end)
        covered = rest.end() if rest else end
        value = data[start:covered].decode("ascii")
        while True:  # the match may run into a following word in capitals: try shorter
            if iban_valid(value.replace(" ", "")) and _at(data, start + len(value)) not in _ALNUM:
                found.append((start, start + len(value), value))
                break
            cut = value.rfind(" ")
            if cut < 0:
                break
            value = value[:cut]
    return found


def _card_brand(digits: str) -> bool:
    """Whether the number has the prefix and length of a card brand."""
    size = len(digits)
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return size in (13, 16, 19)
    if two in (34, 37):  # American Express
        return size == 15
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return size == 16
    if 300 <= three <= 305 or two in (36, 38, 39):  # Diners Club
        return 14 <= size <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= size <= 19
    return two == 50 or 56 <= two <= 69  # Discover, UnionPay, Maestro


def _cards(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for low, high in _merged([(a, _strip_end(data, a, b, _DIGITS)) for a, b in spans]):
        after = _at(data, high)
        if after in _WORD or (after in b".," and _at(data, high + 1) in _DIGITS):
            continue  # part of a word; a number with decimals
        if _at(data, low - 1) in b".," and _at(data, low - 2) in _DIGITS:
            continue  # the decimals of a number
        head = data[max(0, low - 24) : low].translate(_NUMBER_MAP)
        cut = head.rfind(b"x")
        if (cut < 0 and low >= 24) or _FOUR_DIGITS.search(data, low, high) is None:
            continue  # in a long run of numbers (a table); no group of four digits
        low -= len(head) - cut - 1  # back to where the digits and separators start
        while data[low] not in _DIGITS:
            low += 1
        if _at(data, low - 1) in _WORD or _at(data, low - 1) in b"+-.,":
            continue  # part of a word, of a longer number, of an international phone number
        groups = [match.span() for match in _DIGIT_RUN.finditer(data, low, high)]
        found.extend(_cards_in(data, groups))
    return found


def _merged(spans: list[Span]) -> Iterator[Span]:
    """Overlapping spans as one region each."""
    ordered = sorted(spans)
    low, high = ordered[0]
    for start, end in ordered[1:]:
        if start > high:
            yield low, high
            low = start
        high = max(high, end)
    yield low, high


def _cards_in(data: bytes, groups: list[Span]) -> Iterator[Hit]:
    """Cards among groups of digits: one unbroken number, or a group of four and then
    groups of three to six; the groups next to it have fewer than four digits."""
    sizes = [end - start for start, end in groups]
    count = len(sizes)
    first = 0
    while first < count:
        lasts = [first + 1] if 13 <= sizes[first] <= 19 else []
        if sizes[first] == 4:
            last, total = first + 1, 4
            while (
                last < count
                and 3 <= sizes[last] <= 6
                and total + sizes[last] <= 19
                and groups[last][0] - groups[last - 1][1] == 1  # one separator between
            ):
                total += sizes[last]
                last += 1
                lasts.insert(0, last)
        for last in lasts:  # the longest first
            if (first and sizes[first - 1] >= 4) or (last < count and sizes[last] >= 4):
                continue
            start, end = groups[first][0], groups[last - 1][1]
            value = data[start:end].decode("ascii")
            digits = value.replace(" ", "").replace("-", "")
            if len(digits) >= 13 and _card_brand(digits) and luhn_valid(digits):
                yield start, end, value
                first = last - 1
                break
        first += 1


def _ssns(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for start, end in spans:
        before, after = _at(data, start - 1), _at(data, end)
        if before in _WORD or before in b".-" or after in _WORD:
            continue
        if after in b".-" and _at(data, end + 1) in _DIGITS:
            continue
        value = data[start:end].decode("ascii")
        area, group, serial = value.split("-")
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            found.append((start, end, value))
    return found


def _phones(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for start, end in spans:
        end = _strip_end(data, start, end, _PHONE_END)
        before = _at(data, start - 1)
        if before in _WORD or before in b"+.-/":
            continue
        value = data[start:end].decode("ascii")
        if value[0] == "+":  # international: at most 15 digits, trailing groups dropped
            while sum(map(str.isdigit, value)) > 15:
                cut = max(value.rfind(" "), value.rfind("-"), value.rfind("."))
                if cut <= 0:
                    break
                value = value[:cut]
            end = start + len(value)
        elif before in _SEPARATORS and _at(data, start - 2) in _DIGITS:
            continue  # the tail of a longer grouped number
        elif value[0] != "(" and value[0] != "0" and not _one_separator(value):
            continue
        after = _at(data, end)
        if after in _WORD or (after in _SEPARATORS and _at(data, end + 1) in _DIGITS):
            continue
        if 7 <= sum(map(str.isdigit, value)) <= 15:
            found.append((start, end, value))
    return found


def _one_separator(value: str) -> bool:
    """415-555-0132, 1 415-555-0132; not 1.602 176 6208 (a constant's digits)."""
    seps = [char for char in value if not char.isdigit()]
    if value[0] == "1" and len(seps) == 3 and seps[0] != ".":
        seps = seps[1:]
    return len(set(seps)) == 1


_CHECKS: dict[str, Callable[[bytes, list[Span]], list[Hit]]] = {
    "private_key": _private_keys,
    "api_key": _api_keys,
    "email": _emails,
    "iban": _ibans,
    "card": _cards,
    "ssn": _ssns,
    "phone": _phones,
}


def _looks_random(token: str, *, classes: int) -> bool:
    """At least `classes` of upper case, lower case and digits, eight different characters
    (not a placeholder such as XXXX…) and not only hexadecimal: what a generated key looks
    like and a word, a path or a digest does not."""
    chars = set(token)
    if len(chars) < 8 or chars <= _HEX:
        return False
    lower = not chars.isdisjoint("abcdefghijklmnopqrstuvwxyz")
    upper = not chars.isdisjoint("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return lower + upper + (not chars.isdisjoint("0123456789")) >= classes


def _entropy(token: str) -> float:
    size = len(token)
    return -sum(n / size * math.log2(n / size) for n in Counter(token).values())


def _wordiness(token: str) -> float:
    """The share of the token made of words, numbers and hexadecimal pieces: high for
    identifiers (getUserAccountBalance2024), paths and URLs, low for generated keys."""
    explained = 0
    for part in _PARTS.findall(token):
        word = len(part) >= 3 and part.isalpha()
        word = word and (part.islower() or part.isupper() or part.istitle())
        if word or part.isdigit() or (len(part) >= 7 and set(part) <= _HEX):
            explained += len(part)
        else:
            explained += sum(len(found) for found in _WORDS.findall(part) if len(found) >= 4)
    return explained / len(token)
