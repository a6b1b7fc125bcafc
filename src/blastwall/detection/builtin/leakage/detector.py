"""The leakage detector: its configuration, and one finding per interaction from the
values that pass their kind's checks."""

from __future__ import annotations

from bisect import bisect_right
from typing import ClassVar

from pydantic import Field

from blastwall.detection.base import Detector, DetectorConfig, Finding, Item, SystemContext
from blastwall.detection.base import excerpt as cut_excerpt
from blastwall.detection.builtin.leakage.checks import CHECKS, secrets
from blastwall.detection.builtin.leakage.patterns import (
    KINDS,
    MAX_SECRET,
    Kind,
    Span,
    pattern_set,
    runs,
)
from blastwall.telemetry.messages import as_text
from blastwall.telemetry.redact import redact_text

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
        default=24, ge=8, le=MAX_SECRET, description="Shortest run counted as a secret."
    )
    min_count: int = Field(
        default=1, ge=1, description="Distinct values, all kinds together, before a finding."
    )


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
        self._patterns = pattern_set(tuple(k for k in self._kinds if k != "secret"))
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
        if self._needle and (found := runs(data, self._needle)):
            candidates["secret"] = found
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
            if kind == "secret":
                found = secrets(data, spans, self.settings.entropy_threshold)
            else:
                found = CHECKS[kind](data, spans)
            for start, end, value in sorted(found, key=lambda h: (h[0], -h[1])):
                at = bisect_right(starts, start)
                if (at and ends[at - 1] > start) or (at < len(starts) and starts[at] < end):
                    continue
                starts.insert(at, start)  # allowlisted, it still claims its characters
                ends.insert(at, end)
                lowered = value.lower()
                if not any(entry in lowered for entry in self._allowlist):
                    hits.append((kind, start, end, value))
        return hits

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
