"""Service levels: P90 latency and task completion rate of a system over a sliding window.

Counted are the items whose operation is in `operations` (model, agent and workflow calls by
default). A call completed unless it has an `error_type` or one of its finish reasons is in
`failed_finish_reasons` (by default `error`, `content_filter` and `length`: the answer was
an error, was filtered, or was cut off).

Levels, with the default thresholds:

* SEV1 (severity critical): P90 latency above 15 s, or completion below 10%;
* SEV2 (severity high): P90 latency above 7 s, or completion below 50%.

The window is the last `window_s` seconds of event time; items without `time` (plain text
in `blastwall scan`) use the last `min_samples * 5` items instead. Nothing is judged on fewer
than `min_samples` calls (for latency: calls with a latency). The levels are worked out
again every `eval_every` items, and at most once a second of event time.

A finding fires on entering a level or on escalating from SEV2 to SEV1; not again while the
level holds or eases back to SEV2. The detector re-arms once the measure is back within the
SEV2 threshold by `rearm_margin` (by default P90 at most 6.3 s, completion at least 55%), so
that a measure hovering at a threshold does not fire on every evaluation.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Self

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from blastwall.detection.base import Detector, DetectorConfig, Finding, Item, SystemContext

__all__ = ["ServiceLevelConfig", "ServiceLevelDetector", "percentile_90"]

REST_CAP = 20
_EVAL_INTERVAL_S = 1.0
_LEVEL_NAMES = {1: "SEV2", 2: "SEV1"}
_SEVERITIES = {1: "high", 2: "critical"}

# one sample: (time, completed, latency_ms, the item when it may be rested on)
_Sample = tuple[float | None, bool, float | None, Item | None]


class _Ring:
    """Floats in arrival order in a numpy buffer: added on the right, dropped on the left, so
    that a percentile needs no copy out of Python objects."""

    __slots__ = ("buffer", "size", "start")

    def __init__(self) -> None:
        self.buffer = np.empty(256)
        self.start = 0
        self.size = 0

    def append(self, value: float) -> None:
        capacity = self.buffer.size
        if self.size == capacity:
            self.buffer = np.concatenate((self.values(), np.empty(capacity)))
            self.start = 0
            capacity *= 2
        self.buffer[(self.start + self.size) % capacity] = value
        self.size += 1

    def popleft(self) -> None:
        self.start = (self.start + 1) % self.buffer.size
        self.size -= 1

    def values(self) -> NDArray[np.float64]:
        end = self.start + self.size
        if end <= self.buffer.size:
            return self.buffer[self.start : end]
        return np.concatenate((self.buffer[self.start :], self.buffer[: end - self.buffer.size]))


def percentile_90(values: NDArray[np.float64]) -> float:
    """The 90th percentile, interpolated as `numpy.percentile` does, by a partial sort."""
    position = 0.9 * (values.size - 1)
    low = int(position)
    high = min(low + 1, values.size - 1)
    part = np.partition(values, (low, high))
    return float(part[low] + (position - low) * (part[high] - part[low]))


def _level(sev1: bool, sev2: bool) -> int:
    """2 for SEV1, 1 for SEV2, 0 for neither."""
    return 2 if sev1 else 1 if sev2 else 0


class ServiceLevelConfig(DetectorConfig):
    window_s: float = Field(300.0, gt=0, description="The sliding window, in seconds.")
    min_samples: int = Field(20, ge=1, description="Calls a window needs before it is judged.")
    sev1_p90_ms: float = Field(15_000.0, gt=0, description="P90 latency (ms) above: SEV1.")
    sev2_p90_ms: float = Field(7_000.0, gt=0, description="P90 latency (ms) above: SEV2.")
    sev1_completion: float = Field(0.10, ge=0, le=1, description="Completion rate below: SEV1.")
    sev2_completion: float = Field(0.50, ge=0, le=1, description="Completion rate below: SEV2.")
    operations: list[str] = Field(
        default_factory=lambda: ["chat", "text_completion", "invoke_agent", "invoke_workflow"],
        description="Operations that count as calls.",
    )
    failed_finish_reasons: list[str] = Field(
        default_factory=lambda: ["error", "content_filter", "length"],
        description="Finish reasons that mean the task did not complete.",
    )
    rearm_margin: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Re-arm only once P90 is this fraction under the SEV2 threshold, and "
        "completion this fraction of the way from its SEV2 threshold to 100%.",
    )
    eval_every: int = Field(10, ge=1, description="Items between two evaluations.")
    max_samples: int = Field(
        10_000, ge=1, description="Calls kept in the window at most (the oldest go first)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.sev1_p90_ms < self.sev2_p90_ms:
            raise ValueError("sev1_p90_ms must be at least sev2_p90_ms")
        if self.sev1_completion > self.sev2_completion:
            raise ValueError("sev1_completion must be at most sev2_completion")
        return self


class ServiceLevelDetector(Detector):
    id = "service_levels"
    version = "1.0.0"
    description = "P90 latency and task completion rate over a sliding window, against SEV levels."
    stateful = True
    Config = ServiceLevelConfig

    def __init__(self, config: DetectorConfig, context: SystemContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, ServiceLevelConfig)
        self.settings = config
        self._operations = frozenset(config.operations)
        self._failed_reasons = frozenset(config.failed_finish_reasons)
        self._samples: deque[_Sample] = deque()
        self._failures = 0
        self._latencies = _Ring()  # the latencies of the samples that have one, in order
        self._watermark: float | None = None
        self._since_eval = 0
        self._last_eval: float | None = None
        self._levels = {"latency_p90": 0, "task_completion": 0}

    def detect(self, item: Item) -> list[Finding]:
        if item.operation not in self._operations:
            return []
        settings = self.settings
        reasons = item.finish_reasons
        completed = item.error_type is None and (
            not reasons or self._failed_reasons.isdisjoint(reasons)
        )
        latency = item.latency_ms
        slow = latency is not None and latency > settings.sev2_p90_ms
        self._samples.append(
            (item.time, completed, latency, None if completed and not slow else item)
        )
        self._failures += not completed
        if latency is not None:
            self._latencies.append(latency)
        time = item.time
        if time is not None:
            if self._watermark is None or time > self._watermark:
                self._watermark = time
            self._expire(self._watermark - settings.window_s)
        cap = settings.max_samples if time is not None else settings.min_samples * 5
        while len(self._samples) > cap:
            self._pop()
        self._since_eval += 1
        if self._since_eval < settings.eval_every:
            return []
        if time is not None and self._watermark is not None:
            if self._last_eval is not None and self._watermark - self._last_eval < _EVAL_INTERVAL_S:
                return []
            self._last_eval = self._watermark
        self._since_eval = 0
        return self._evaluate(timed=time is not None)

    def _expire(self, cutoff: float) -> None:
        samples = self._samples
        while samples:
            time = samples[0][0]
            if time is None or time >= cutoff:
                return
            self._pop()

    def _pop(self) -> None:
        _, completed, latency, _ = self._samples.popleft()
        self._failures -= not completed
        if latency is not None:
            self._latencies.popleft()

    def _evaluate(self, *, timed: bool) -> list[Finding]:
        settings = self.settings
        findings: list[Finding] = []
        if self._latencies.size >= settings.min_samples:
            measured = percentile_90(self._latencies.values())
            level = _level(measured > settings.sev1_p90_ms, measured > settings.sev2_p90_ms)
            clear = measured <= settings.sev2_p90_ms * (1 - settings.rearm_margin)
            if self._changed("latency_p90", level, clear=clear):
                findings.append(self._latency(level, measured, timed=timed))
        total = len(self._samples)
        if total >= settings.min_samples:
            rate = 1 - self._failures / total
            level = _level(rate < settings.sev1_completion, rate < settings.sev2_completion)
            margin = settings.rearm_margin * (1 - settings.sev2_completion)
            clear = rate >= settings.sev2_completion + margin
            if self._changed("task_completion", level, clear=clear):
                findings.append(self._completion(level, rate, timed=timed))
        return findings

    def _changed(self, kind: str, level: int, *, clear: bool) -> bool:
        """Whether `level` is news: entered from below. A clear measure re-arms."""
        if level > self._levels[kind]:
            self._levels[kind] = level
            return True
        if clear:
            self._levels[kind] = 0
        return False

    def _window(self, *, timed: bool) -> tuple[str, dict[str, float | int | None]]:
        if timed:
            return f"over the last {self.settings.window_s:g} s", {
                "window_s": self.settings.window_s
            }
        cap = self.settings.min_samples * 5
        return f"over the last {cap} calls", {"window_s": None, "window_items": cap}

    def _latency(self, level: int, p90: float, *, timed: bool) -> Finding:
        settings = self.settings
        threshold = settings.sev1_p90_ms if level == 2 else settings.sev2_p90_ms
        where, window = self._window(timed=timed)
        samples = self._latencies.size
        slowest = heapq.nlargest(
            REST_CAP,
            (s for s in self._samples if s[3] is not None and s[2] is not None),
            key=lambda s: s[2] or 0.0,
        )
        return Finding(
            kind="latency_p90",
            archetype="performance_degradation",
            severity=_SEVERITIES[level],
            confidence=0.9,
            summary=f"P90 latency {p90 / 1000:.1f} s {where} ({samples} calls) is above the "
            f"{_LEVEL_NAMES[level]} threshold of {threshold / 1000:g} s",
            owasp=("LLM10:2025",),
            atlas=("AML.T0029",),
            attributes={
                "level": _LEVEL_NAMES[level],
                "p90_ms": round(p90, 1),
                "samples": samples,
                **window,
                "threshold_ms": threshold,
            },
            rests_on=[s[3] for s in slowest if s[3] is not None] or None,
        )

    def _completion(self, level: int, rate: float, *, timed: bool) -> Finding:
        settings = self.settings
        threshold = settings.sev1_completion if level == 2 else settings.sev2_completion
        where, window = self._window(timed=timed)
        total = len(self._samples)
        failed = itertools.islice(
            (s[3] for s in reversed(self._samples) if not s[1] and s[3] is not None), REST_CAP
        )
        return Finding(
            kind="task_completion",
            archetype="performance_degradation",
            severity=_SEVERITIES[level],
            confidence=0.9,
            summary=f"Only {rate:.0%} of {total} calls {where} completed, below the "
            f"{_LEVEL_NAMES[level]} threshold of {threshold:.0%}",
            atlas=("AML.T0029",),
            attributes={
                "level": _LEVEL_NAMES[level],
                "completion_rate": round(rate, 4),
                "samples": total,
                "failed": self._failures,
                **window,
                "threshold": threshold,
            },
            rests_on=list(failed) or None,
        )
