"""Drift: a system's recent behaviour against its own baseline.

The baseline is the first `baseline_size` calls the detector sees (items whose operation is
in `operations`), frozen once full; the recent window is the last `window_size` calls after
it. Once both are full, every `check_every` calls compare them on four metrics:

* `drift_refusal_rate`: the share of answers that are refusals ("I'm sorry, but I can't…",
  "As an AI…", looked for in the first 600 characters of each answer);
* `drift_output_length`: the answer length in characters, by a two-sample Kolmogorov–Smirnov
  test (p-value below `ks_p`) and the PSI over the baseline's deciles, both required;
* `drift_detector_hits`: the share of calls on which a stateless detector fired;
* `drift_tool_mix`: the share of each tool among the tool calls the model asked for.

A rate drifts when its PSI (over the two outcomes) reaches `psi_threshold` and it moved by at
least `min_rate_change`; the tool mix when its PSI reaches `psi_threshold`. PSI is
sum((recent - baseline) * ln(recent / baseline)) over the bins, shares floored at
`psi_epsilon`. A metric is not judged on fewer than `min_samples` values on either side
(`min_tool_calls` for the tool mix). Calls without answer text (tool requests only, errors)
count for the hit rate and tool mix, not for refusals and length.

A metric fires once, then not again until a later check finds its PSI back under the
threshold. Severity is warning, high from twice the threshold. The baseline is never
refreshed: a new instance (the system's inventory entry changed) learns a new one.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from blastwall.detection.base import (
    Detector,
    DetectorConfig,
    Finding,
    Item,
    SystemContext,
    excerpt,
)
from blastwall.detection.ks import ks_2samp
from blastwall.detection.patterns import PatternSet, Rule

__all__ = ["REFUSAL", "DriftConfig", "DriftDetector", "is_refusal", "psi"]

REST_CAP = 20
REFUSAL_SCAN_CHARS = 600
TOOLS_PER_CALL = 32
"""Tool calls of one item counted at most, so that one item cannot flood the mix."""

_APOSTROPHE = "['’]"
REFUSAL_PATTERN = (
    rf"\b(?:i{_APOSTROPHE}?m sorry,? but i (?:can{_APOSTROPHE}?t|cannot|won{_APOSTROPHE}?t)"
    rf"|i am sorry,? but i (?:can{_APOSTROPHE}?t|cannot|won{_APOSTROPHE}?t)"
    rf"|i (?:cannot|can{_APOSTROPHE}?t|won{_APOSTROPHE}?t|can not) "
    r"(?:help|assist|comply|provide|fulfill|support|do that|answer)"
    rf"|i{_APOSTROPHE}?m (?:unable|not able) to|i am (?:unable|not able) to"
    r"|as an ai\b|i must (?:decline|refuse))"
)
"""Refusal phrases (case-insensitive)."""
REFUSAL = re.compile(REFUSAL_PATTERN, re.IGNORECASE)
"""The same through `re`: to cut an excerpt around a refusal found."""


@cache
def _refusals() -> PatternSet:
    """The refusal phrases compiled for Hyperscan (once, on first use): the scan every
    answer goes through, about twenty times faster than `re` on text without a refusal."""
    return PatternSet([Rule("refusal", REFUSAL_PATTERN)])


def is_refusal(text: str) -> bool:
    """Whether the first `REFUSAL_SCAN_CHARS` characters of an answer refuse."""
    return bool(_refusals().scan(text[:REFUSAL_SCAN_CHARS].encode()))


class DriftConfig(DetectorConfig):
    baseline_size: int = Field(500, ge=1, description="Calls in the frozen baseline.")
    window_size: int = Field(200, ge=1, description="Calls in the recent window.")
    check_every: int = Field(50, ge=1, description="Calls between two checks.")
    min_samples: int = Field(
        100, ge=1, description="Values each side needs before a metric is judged."
    )
    min_tool_calls: int = Field(
        50, ge=1, description="Tool calls each side needs before the tool mix is judged."
    )
    psi_threshold: float = Field(0.25, gt=0, description="PSI from which a metric drifts.")
    ks_p: float = Field(
        0.001, gt=0, le=1, description="Output length: KS p-value below which it drifts."
    )
    min_rate_change: float = Field(
        0.05, ge=0, le=1, description="Rates: the absolute change a drift needs besides PSI."
    )
    psi_epsilon: float = Field(1e-4, gt=0, lt=1, description="Floor of a bin's share in PSI.")
    operations: list[str] = Field(
        default_factory=lambda: ["chat", "text_completion", "invoke_agent", "invoke_workflow"],
        description="Operations whose items are counted.",
    )


@dataclass(slots=True)
class _Sample:
    refused: bool | None
    length: int | None
    hit: bool
    tools: tuple[str, ...]
    item: Item


@dataclass(slots=True)
class _Baseline:
    refusals: int
    answered: int
    hits: int
    n: int
    lengths: NDArray[np.float64]
    edges: NDArray[np.float64]
    length_shares: NDArray[np.float64]
    tools: Counter[str]
    tool_calls: int


def psi(baseline: NDArray[np.float64], recent: NDArray[np.float64], epsilon: float) -> float:
    """Population stability index of two distributions over the same bins (shares)."""
    b = np.maximum(baseline, epsilon)
    r = np.maximum(recent, epsilon)
    return float(np.sum((r - b) * np.log(r / b)))


def _rate_psi(baseline: float, recent: float, epsilon: float) -> float:
    total = 0.0
    for b, r in ((baseline, recent), (1 - baseline, 1 - recent)):
        b, r = max(b, epsilon), max(r, epsilon)
        total += (r - b) * math.log(r / b)
    return total


def _shares(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.float64]:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / max(values.size, 1)


def _lengths_summary(values: NDArray[np.float64]) -> dict[str, float]:
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return {
        "mean": round(float(values.mean()), 1),
        "p10": float(p10),
        "median": float(median),
        "p90": float(p90),
    }


class DriftDetector(Detector):
    id = "drift"
    version = "1.0.0"
    description = (
        "Refusal rate, output length, detector hit rate and tool mix of recent calls "
        "against the system's baseline (PSI and a KS test)."
    )
    stateful = True
    Config = DriftConfig

    def __init__(self, config: DetectorConfig, context: SystemContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, DriftConfig)
        self.settings = config
        self._operations = frozenset(config.operations)
        self._learning: list[_Sample] | None = []
        self._baseline: _Baseline | None = None
        self._recent: deque[_Sample] = deque()
        self._refusals = self._answered = self._hits = self._tool_calls = 0
        self._tools: Counter[str] = Counter()
        self._since_check = 0
        self._fired: set[str] = set()

    def detect(self, item: Item) -> list[Finding]:
        if item.operation not in self._operations:
            return []
        sample = self._sample(item)
        if self._learning is not None:
            self._learning.append(sample)
            if len(self._learning) >= self.settings.baseline_size:
                self._baseline = self._freeze(self._learning)
                self._learning = None
            return []
        self._add(sample)
        self._since_check += 1
        if len(self._recent) < self.settings.window_size:
            return []
        if self._since_check < self.settings.check_every:
            return []
        self._since_check = 0
        return self._check()

    # keeping count

    @staticmethod
    def _sample(item: Item) -> _Sample:
        length = 0
        refused = False
        for text in item.outputs:
            length += len(text)
            if not refused and text and is_refusal(text):
                refused = True
        tools = tuple(call.name or "(unnamed)" for call in item.tool_calls[:TOOLS_PER_CALL])
        if not length:
            return _Sample(None, None, bool(item.hits), tools, item)
        return _Sample(refused, length, bool(item.hits), tools, item)

    def _freeze(self, samples: list[_Sample]) -> _Baseline:
        lengths = np.array([s.length for s in samples if s.length is not None], dtype=float)
        if lengths.size:
            edges = np.unique(np.percentile(lengths, np.arange(10, 100, 10)))
        else:
            edges = np.empty(0)
        tools = Counter(t for s in samples for t in s.tools)
        return _Baseline(
            refusals=sum(1 for s in samples if s.refused),
            answered=lengths.size,
            hits=sum(1 for s in samples if s.hit),
            n=len(samples),
            lengths=lengths,
            edges=edges,
            length_shares=_shares(lengths, edges),
            tools=tools,
            tool_calls=sum(tools.values()),
        )

    def _add(self, sample: _Sample) -> None:
        if len(self._recent) >= self.settings.window_size:
            self._count(self._recent.popleft(), -1)
        self._recent.append(sample)
        self._count(sample, 1)

    def _count(self, sample: _Sample, sign: int) -> None:
        if sample.length is not None:
            self._answered += sign
            self._refusals += sign * bool(sample.refused)
        self._hits += sign * sample.hit
        if sample.tools:
            self._tool_calls += sign * len(sample.tools)
            for tool in sample.tools:
                self._tools[tool] += sign
                if not self._tools[tool]:
                    del self._tools[tool]

    # checking

    def _check(self) -> list[Finding]:
        baseline = self._baseline
        assert baseline is not None
        findings = [
            self._rate(
                "drift_refusal_rate",
                "refusal rate",
                baseline.refusals,
                baseline.answered,
                self._refusals,
                self._answered,
                lambda s: bool(s.refused),
            ),
            self._rate(
                "drift_detector_hits",
                "detector hit rate",
                baseline.hits,
                baseline.n,
                self._hits,
                len(self._recent),
                lambda s: s.hit,
            ),
            self._length(baseline),
            self._tool_mix(baseline),
        ]
        return [f for f in findings if f is not None]

    def _judge(self, kind: str, value: float, drifted: bool) -> bool:
        """Whether to fire: drifted and not fired since the metric last recovered."""
        if value < self.settings.psi_threshold:
            self._fired.discard(kind)
            return False
        if not drifted or kind in self._fired:
            return False
        self._fired.add(kind)
        return True

    def _rate(
        self,
        kind: str,
        label: str,
        base_k: int,
        base_n: int,
        recent_k: int,
        recent_n: int,
        involved: Callable[[_Sample], bool],
    ) -> Finding | None:
        settings = self.settings
        if min(base_n, recent_n) < settings.min_samples:
            return None
        before, now = base_k / base_n, recent_k / recent_n
        value = _rate_psi(before, now, settings.psi_epsilon)
        if not self._judge(kind, value, abs(now - before) >= settings.min_rate_change):
            return None
        direction = "rose" if now > before else "fell"
        items = [s.item for s in reversed(self._recent) if involved(s)] if now > before else []
        found = None
        if kind == "drift_refusal_rate" and items:
            found = _refusal_excerpt(items[0])
        return self._finding(
            kind,
            f"The {label} {direction} from {before:.1%} to {now:.1%} (PSI {value:.2f})",
            value,
            {"metric": label.replace(" ", "_"), "psi": round(value, 4)},
            {"rate": round(before, 4)},
            {"rate": round(now, 4)},
            base_n,
            recent_n,
            items or [s.item for s in reversed(self._recent)],
            found,
        )

    def _length(self, baseline: _Baseline) -> Finding | None:
        settings = self.settings
        if min(baseline.answered, self._answered) < settings.min_samples:
            return None
        recent = np.fromiter(
            (s.length for s in self._recent if s.length is not None),
            dtype=float,
            count=self._answered,
        )
        value = psi(baseline.length_shares, _shares(recent, baseline.edges), settings.psi_epsilon)
        if value < settings.psi_threshold:
            self._fired.discard("drift_output_length")
            return None
        _, p_value = ks_2samp(baseline.lengths, recent)
        if not self._judge("drift_output_length", value, p_value < settings.ks_p):
            return None
        before, now = _lengths_summary(baseline.lengths), _lengths_summary(recent)
        return self._finding(
            "drift_output_length",
            f"Answers are now {now['median']:g} characters at the median, against "
            f"{before['median']:g} in the baseline (PSI {value:.2f}, KS p={p_value:.1e})",
            value,
            {"metric": "output_length", "psi": round(value, 4), "ks_p": p_value},
            before,
            now,
            baseline.answered,
            self._answered,
            [s.item for s in reversed(self._recent) if s.length is not None],
            None,
        )

    def _tool_mix(self, baseline: _Baseline) -> Finding | None:
        settings = self.settings
        if min(baseline.tool_calls, self._tool_calls) < settings.min_tool_calls:
            return None
        names = sorted(baseline.tools.keys() | self._tools.keys())
        before = np.array([baseline.tools[n] for n in names], dtype=float) / baseline.tool_calls
        now = np.array([self._tools[n] for n in names], dtype=float) / self._tool_calls
        value = psi(before, now, settings.psi_epsilon)
        if not self._judge("drift_tool_mix", value, True):
            return None
        moved = names[int(np.argmax(now - before))]
        share, was = float(now[names.index(moved)]), float(before[names.index(moved)])
        return self._finding(
            "drift_tool_mix",
            f"Tool {moved} now makes {share:.0%} of tool calls, against {was:.0%} in the "
            f"baseline (PSI {value:.2f})",
            value,
            {"metric": "tool_mix", "psi": round(value, 4), "tool": moved},
            _top_shares(baseline.tools, baseline.tool_calls),
            _top_shares(self._tools, self._tool_calls),
            baseline.tool_calls,
            self._tool_calls,
            [s.item for s in reversed(self._recent) if moved in s.tools],
            None,
        )

    def _finding(
        self,
        kind: str,
        summary: str,
        value: float,
        attributes: dict[str, Any],
        before: dict[str, Any],
        now: dict[str, Any],
        base_n: int,
        recent_n: int,
        items: list[Item],
        found: str | None,
    ) -> Finding:
        high = value >= 2 * self.settings.psi_threshold
        output = kind in ("drift_refusal_rate", "drift_output_length")
        return Finding(
            kind=kind,
            archetype="model_manipulation",
            severity="high" if high else "warning",
            confidence=0.8 if high else 0.6,
            summary=summary,
            excerpt=found,
            matched=kind,
            owasp=("LLM09:2025",) if output else (),
            attributes={
                **attributes,
                "baseline": before,
                "recent": now,
                "baseline_n": base_n,
                "recent_n": recent_n,
                "threshold": self.settings.psi_threshold,
            },
            rests_on=items[:REST_CAP] or None,
        )


def _top_shares(counts: Counter[str], total: int, top: int = 5) -> dict[str, float]:
    return {name: round(n / total, 4) for name, n in counts.most_common(top)}


def _refusal_excerpt(item: Item) -> str | None:
    for text in item.outputs:
        match = REFUSAL.search(text, 0, REFUSAL_SCAN_CHARS)
        if match is not None:
            return excerpt(text, match.start(), match.end())
    return None
