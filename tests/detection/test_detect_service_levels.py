"""Service levels: P90 latency and task completion rate over a sliding window."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from blastwall.detection.base import Finding, Item, SystemContext
from blastwall.detection.builtin.service_levels import ServiceLevelDetector, percentile_90

T0 = 1_700_000_000.0


def _detector(**settings: Any) -> ServiceLevelDetector:
    return ServiceLevelDetector(
        ServiceLevelDetector.Config(**settings), SystemContext(system_id="s")
    )


def _calls(
    rng: np.random.Generator,
    n: int,
    *,
    start: float = T0,
    step: float | None = 1.0,
    latency: tuple[float, float] = (500, 3_000),
    failures: float = 0.0,
    operation: str = "chat",
) -> list[Item]:
    """`n` calls, one every `step` seconds (None: without time), latencies uniform in
    `latency` (ms), each failing with probability `failures`."""
    items = []
    for i in range(n):
        failed = rng.random() < failures
        items.append(
            Item(
                operation=operation,
                time=None if step is None else start + i * step,
                latency_ms=float(rng.uniform(*latency)),
                error_type="timeout" if failed else None,
                finish_reasons=None if failed else ["stop"],
            )
        )
    return items


def _run(detector: ServiceLevelDetector, items: list[Item]) -> list[Finding]:
    return [f for item in items for f in detector.detect(item)]


def _levels(found: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.kind, f.attributes["level"], f.severity) for f in found]


def test_p90_of_nine_seconds_is_sev2() -> None:
    rng = np.random.default_rng(1)
    items = _calls(rng, 60, latency=(5_000, 9_500))
    found = _run(_detector(), items)
    assert _levels(found) == [("latency_p90", "SEV2", "high")]
    finding = found[0]
    samples = finding.attributes["samples"]
    expected = np.percentile([i.latency_ms for i in items[:samples]], 90)
    assert finding.attributes["p90_ms"] == pytest.approx(expected, abs=0.1)
    assert 7_000 < finding.attributes["p90_ms"] < 15_000
    assert finding.attributes["samples"] >= 20
    assert finding.attributes["window_s"] == 300
    assert finding.attributes["threshold_ms"] == 7_000
    assert finding.archetype == "performance_degradation"
    assert finding.owasp == ("LLM10:2025",)
    assert finding.atlas == ("AML.T0029",)
    assert finding.rests_on is not None
    latencies = [i.latency_ms or 0 for i in finding.rests_on]
    assert latencies == sorted(latencies, reverse=True)
    assert all(latency > 7_000 for latency in latencies)
    assert len(finding.rests_on) <= 20


def test_p90_of_twenty_seconds_is_sev1() -> None:
    rng = np.random.default_rng(2)
    found = _run(_detector(), _calls(rng, 60, latency=(15_000, 21_000)))
    assert _levels(found) == [("latency_p90", "SEV1", "critical")]
    assert found[0].attributes["p90_ms"] > 15_000
    assert found[0].attributes["threshold_ms"] == 15_000
    assert len(found[0].rests_on or []) == 20


def test_escalation_fires_easing_does_not_and_recovery_rearms() -> None:
    rng = np.random.default_rng(3)
    detector = _detector()
    found = _run(detector, _calls(rng, 60, latency=(8_000, 9_500)))
    assert _levels(found) == [("latency_p90", "SEV2", "high")]
    found = _run(detector, _calls(rng, 400, start=T0 + 60, latency=(16_000, 25_000)))
    assert _levels(found) == [("latency_p90", "SEV1", "critical")]
    # eases back to SEV2 and stays there: no new finding
    assert _run(detector, _calls(rng, 400, start=T0 + 460, latency=(8_000, 9_500))) == []
    # back to normal: re-armed, so the next slowdown fires again
    assert _run(detector, _calls(rng, 400, start=T0 + 860)) == []
    found = _run(detector, _calls(rng, 400, start=T0 + 1_260, latency=(8_000, 9_500)))
    assert _levels(found) == [("latency_p90", "SEV2", "high")]


def test_slow_but_under_threshold_and_steady_state_never_fire() -> None:
    rng = np.random.default_rng(4)
    assert _run(_detector(), _calls(rng, 3_000, step=0.5)) == []
    assert _run(_detector(), _calls(rng, 3_000, step=0.5, latency=(4_000, 6_900))) == []
    assert _run(_detector(), _calls(rng, 3_000, step=0.5, failures=0.3)) == []


def test_ten_samples_never_alert() -> None:
    rng = np.random.default_rng(5)
    items = _calls(rng, 10, step=5.0, latency=(30_000, 60_000), failures=1.0)
    assert _run(_detector(), items) == []
    assert _run(_detector(eval_every=1), items) == []
    # the same calls once there are twenty
    more = _calls(rng, 20, step=5.0, latency=(30_000, 60_000), failures=1.0)
    assert {f.kind for f in _run(_detector(), more)} == {"latency_p90", "task_completion"}


def test_sixty_percent_failures_are_sev2() -> None:
    rng = np.random.default_rng(6)
    found = _run(_detector(), _calls(rng, 100, failures=0.6))
    assert _levels(found) == [("task_completion", "SEV2", "high")]
    finding = found[0]
    assert 0.10 <= finding.attributes["completion_rate"] < 0.5
    assert finding.attributes["threshold"] == 0.5
    assert finding.atlas == ("AML.T0029",)
    assert finding.rests_on is not None and 0 < len(finding.rests_on) <= 20
    assert all(i.error_type == "timeout" for i in finding.rests_on)


def test_almost_all_failing_is_sev1() -> None:
    rng = np.random.default_rng(7)
    found = _run(_detector(), _calls(rng, 100, failures=0.95))
    assert _levels(found) == [("task_completion", "SEV1", "critical")]


def test_finish_reasons_that_mean_no_completion() -> None:
    items = [
        Item(time=T0 + i, latency_ms=100, finish_reasons=["length" if i % 5 else "stop"])
        for i in range(40)
    ]
    found = _run(_detector(), items)
    assert _levels(found) == [("task_completion", "SEV2", "high")]
    filtered = [Item(time=T0 + i, finish_reasons=["content_filter"]) for i in range(40)]
    assert _levels(_run(_detector(), filtered)) == [("task_completion", "SEV1", "critical")]
    fine = [Item(time=T0 + i, finish_reasons=["stop", "tool_calls"]) for i in range(40)]
    assert _run(_detector(), fine) == []
    own = _detector(failed_finish_reasons=["tool_calls"])
    assert _levels(_run(own, fine)) == [("task_completion", "SEV1", "critical")]


def test_the_window_forgets_old_calls() -> None:
    rng = np.random.default_rng(8)
    detector = _detector()
    assert _levels(_run(detector, _calls(rng, 50, latency=(20_000, 30_000)))) == [
        ("latency_p90", "SEV1", "critical")
    ]
    # twenty minutes later the slow calls are out of the window
    _run(detector, _calls(rng, 30, start=T0 + 1_200))
    assert len(detector._samples) == 30
    assert detector._levels["latency_p90"] == 0


def test_without_time_a_count_window_is_used() -> None:
    rng = np.random.default_rng(9)
    detector = _detector()
    found = _run(detector, _calls(rng, 100, step=None, latency=(8_000, 12_000)))
    assert _levels(found) == [("latency_p90", "SEV2", "high")]
    assert found[0].attributes["window_s"] is None
    assert found[0].attributes["window_items"] == 100
    assert len(detector._samples) == 100
    # the next 100 fast calls push the slow ones out, and the detector re-arms
    assert _run(detector, _calls(rng, 100, step=None)) == []
    assert len(detector._samples) == 100
    assert detector._levels["latency_p90"] == 0


def test_only_the_configured_operations_count() -> None:
    rng = np.random.default_rng(10)
    slow_tools = _calls(rng, 100, latency=(20_000, 30_000), operation="execute_tool")
    assert _run(_detector(), slow_tools) == []
    found = _run(_detector(operations=["execute_tool"]), slow_tools)
    assert _levels(found) == [("latency_p90", "SEV1", "critical")]


def test_thresholds_are_configurable() -> None:
    rng = np.random.default_rng(11)
    items = _calls(rng, 60, latency=(2_000, 3_000))
    assert _run(_detector(), items) == []
    found = _run(_detector(sev2_p90_ms=2_500, sev1_p90_ms=4_000), items)
    assert _levels(found) == [("latency_p90", "SEV2", "high")]
    with pytest.raises(ValidationError):
        ServiceLevelDetector.Config(sev1_p90_ms=1_000, sev2_p90_ms=2_000)
    with pytest.raises(ValidationError):
        ServiceLevelDetector.Config(sev1_completion=0.6, sev2_completion=0.5)


def test_memory_stays_bounded() -> None:
    rng = np.random.default_rng(12)
    detector = _detector(max_samples=2_000)
    _run(detector, _calls(rng, 10_000, step=0.001, latency=(8_000, 9_000)))
    assert len(detector._samples) == 2_000
    assert sum(s[3] is not None for s in detector._samples) <= 2_000


def test_a_measure_hovering_at_a_threshold_fires_once() -> None:
    rng = np.random.default_rng(13)
    items = _calls(rng, 3_000, failures=0.56)  # completion wanders about 44% for an hour
    found = _run(_detector(), items)
    assert _levels(found) == [("task_completion", "SEV2", "high")]
    assert len(_run(_detector(rearm_margin=0), items)) > 1


def test_percentile_90_agrees_with_numpy() -> None:
    rng = np.random.default_rng(14)
    for size in (1, 2, 11, 20, 1_001):
        values = rng.lognormal(7, 1, size)
        assert percentile_90(values) == pytest.approx(np.percentile(values, 90))


def test_latency_window_wraps_and_grows() -> None:
    rng = np.random.default_rng(15)
    detector = _detector(window_s=60)
    items = _calls(rng, 2_000, step=0.1)  # 600 in the window: the buffer grows and wraps
    _run(detector, items)
    last = items[-1].time
    assert last is not None
    window = [i.latency_ms for i in items if i.time is not None and i.time >= last - 60]
    assert list(detector._latencies.values()) == window
