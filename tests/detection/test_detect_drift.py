"""Drift: refusal rate, output length, detector hits and tool mix against a baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from blastwall.detection.base import Finding, Item, SystemContext, ToolCall
from blastwall.detection.builtin.drift import REFUSAL, DriftDetector, is_refusal, psi

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I cannot help with requests like this one.",
    "As an AI language model, I do not have opinions.",
    "I’m unable to share that information.",
]


def _detector(**settings: Any) -> DriftDetector:
    return DriftDetector(DriftDetector.Config(**settings), SystemContext(system_id="s"))


def _calls(
    rng: np.random.Generator,
    n: int,
    *,
    refusals: float = 0.02,
    length: tuple[float, float] = (800, 120),
    hits: float = 0.01,
    tools: dict[str, float] | None = None,
    tool_calls: float = 0.5,
) -> list[Item]:
    """`n` calls: answers of normal(mean, sd) characters, a share of them refusals (of the
    same length), a share with detector hits, and a share asking for one tool of `tools`."""
    mix = tools or {"search": 0.6, "fetch": 0.3, "calendar": 0.1}
    names, weights = list(mix), np.array(list(mix.values()))
    items = []
    for _ in range(n):
        size = max(20, int(rng.normal(*length)))
        text = REFUSALS[int(rng.integers(len(REFUSALS)))] if rng.random() < refusals else ""
        calls = []
        if rng.random() < tool_calls:
            calls.append(ToolCall(str(rng.choice(names, p=weights / weights.sum())), {}))
        items.append(
            Item(
                outputs=[(text + " " + "lorem " * size)[:size]],
                tool_calls=calls,
                hits=["injection"] if rng.random() < hits else [],
            )
        )
    return items


def _run(detector: DriftDetector, items: list[Item]) -> list[Finding]:
    return [f for item in items for f in detector.detect(item)]


def _kinds(found: list[Finding]) -> list[str]:
    return [f.kind for f in found]


def test_steady_state_never_drifts() -> None:
    rng = np.random.default_rng(1)
    detector = _detector()
    assert _run(detector, _calls(rng, 5_000)) == []
    assert detector._baseline is not None


def test_refusal_rate_from_two_to_thirty_percent() -> None:
    rng = np.random.default_rng(2)
    detector = _detector()
    assert _run(detector, _calls(rng, 500)) == []
    found = _run(detector, _calls(rng, 300, refusals=0.30))
    assert _kinds(found) == ["drift_refusal_rate"]
    finding = found[0]
    assert finding.severity == "high"  # PSI about 0.85, over twice the threshold
    assert finding.archetype == "model_manipulation"
    assert finding.owasp == ("LLM09:2025",)
    attributes = finding.attributes
    assert attributes["psi"] >= 0.5
    assert attributes["baseline"]["rate"] < 0.05
    assert 0.2 < attributes["recent"]["rate"] < 0.4
    assert attributes["baseline_n"] == 500
    assert attributes["recent_n"] == 200
    assert finding.excerpt is not None and REFUSAL.search(finding.excerpt)
    assert finding.rests_on is not None and 0 < len(finding.rests_on) <= 20
    assert all(REFUSAL.search(i.outputs[0]) for i in finding.rests_on)


def test_refusal_rate_falling_is_drift_too() -> None:
    rng = np.random.default_rng(3)
    detector = _detector()
    _run(detector, _calls(rng, 500, refusals=0.25))
    assert _kinds(_run(detector, _calls(rng, 300, refusals=0.0))) == ["drift_refusal_rate"]


def test_output_length_halving() -> None:
    rng = np.random.default_rng(4)
    detector = _detector()
    _run(detector, _calls(rng, 500))
    found = _run(detector, _calls(rng, 300, length=(400, 60)))
    assert _kinds(found) == ["drift_output_length"]
    attributes = found[0].attributes
    assert attributes["ks_p"] < 0.001
    assert attributes["psi"] >= 0.5
    assert found[0].severity == "high"
    assert attributes["baseline"]["median"] == pytest.approx(800, rel=0.05)
    assert attributes["recent"]["median"] == pytest.approx(400, rel=0.05)


def test_slightly_longer_answers_are_not_drift() -> None:
    rng = np.random.default_rng(5)
    detector = _detector()
    _run(detector, _calls(rng, 500))
    assert _run(detector, _calls(rng, 1_000, length=(820, 120))) == []


def test_output_length_needs_the_ks_test_as_well_as_psi() -> None:
    rng = np.random.default_rng(14)
    detector = _detector(psi_threshold=0.05)  # a PSI this low is reached by chance
    found = _run(detector, _calls(rng, 3_000))
    assert "drift_output_length" not in _kinds(found)


def test_a_new_tool_dominating_the_mix() -> None:
    rng = np.random.default_rng(6)
    detector = _detector()
    _run(detector, _calls(rng, 500))
    mix = {"delete_records": 0.7, "search": 0.2, "fetch": 0.1}
    found = _run(detector, _calls(rng, 300, tools=mix))
    assert _kinds(found) == ["drift_tool_mix"]
    finding = found[0]
    assert finding.attributes["tool"] == "delete_records"
    assert "delete_records" not in finding.attributes["baseline"]
    assert finding.attributes["recent"]["delete_records"] > 0.5
    assert finding.rests_on is not None
    assert all(c.name == "delete_records" for i in finding.rests_on for c in i.tool_calls)
    assert finding.owasp == ()


def test_detector_hit_rate() -> None:
    rng = np.random.default_rng(7)
    detector = _detector()
    _run(detector, _calls(rng, 500, hits=0.01))
    found = _run(detector, _calls(rng, 300, hits=0.20))
    assert _kinds(found) == ["drift_detector_hits"]
    assert found[0].rests_on is not None
    assert all(i.hits for i in found[0].rests_on)


def test_small_rate_changes_need_the_minimum_change() -> None:
    rng = np.random.default_rng(8)
    base = _calls(rng, 500, hits=0.0)
    recent = _calls(rng, 300, hits=0.0)
    for item in recent[::25]:  # exactly 4% of any 200 recent calls
        item.hits = ["injection"]
    # with this epsilon, 0% -> 4% is a PSI of 0.33: over the threshold, but a small change
    assert _run(_detector(psi_epsilon=1e-5), base + recent) == []
    found = _run(_detector(psi_epsilon=1e-5, min_rate_change=0.01), base + recent)
    assert _kinds(found) == ["drift_detector_hits"]
    expected = 0.04 * np.log(4_000) - 0.04 * np.log(0.96)
    assert found[0].attributes["psi"] == pytest.approx(expected, abs=1e-4)


def test_ten_samples_never_alert() -> None:
    rng = np.random.default_rng(9)
    small = _detector(baseline_size=10, window_size=10, check_every=5)
    calm, shifted = _calls(rng, 10, refusals=0.0), _calls(rng, 100, refusals=1.0, hits=1.0)
    assert _run(small, calm + shifted) == []
    # the same shift with room for the minimum samples
    roomy = _detector(baseline_size=100, window_size=100, check_every=5)
    found = _run(roomy, _calls(rng, 100, refusals=0.0) + shifted)
    assert set(_kinds(found)) == {"drift_refusal_rate", "drift_detector_hits"}


def test_no_check_before_the_baseline_and_window_are_full() -> None:
    rng = np.random.default_rng(10)
    detector = _detector()
    assert _run(detector, _calls(rng, 499) + _calls(rng, 200, refusals=0.5)) == []
    assert detector._baseline is not None
    assert len(detector._recent) == 199


def test_fires_once_per_episode_and_again_after_recovery() -> None:
    rng = np.random.default_rng(11)
    detector = _detector()
    _run(detector, _calls(rng, 500))
    assert _kinds(_run(detector, _calls(rng, 1_000, refusals=0.3))) == ["drift_refusal_rate"]
    assert _run(detector, _calls(rng, 400)) == []  # recovered: PSI back under the threshold
    assert "drift_refusal_rate" not in detector._fired
    assert _kinds(_run(detector, _calls(rng, 300, refusals=0.3))) == ["drift_refusal_rate"]


def test_other_operations_and_empty_answers() -> None:
    rng = np.random.default_rng(12)
    detector = _detector()
    _run(detector, _calls(rng, 500))
    tools = [Item(operation="execute_tool", outputs=["x"], hits=["a"]) for _ in range(500)]
    assert _run(detector, tools) == []
    assert len(detector._recent) == 0
    # tool requests without text: counted for hits and tools, not for refusals and length
    names = ["search"] * 6 + ["fetch"] * 3 + ["calendar"]  # the baseline's mix
    requests = [Item(tool_calls=[ToolCall(names[i % 10], {})]) for i in range(300)]
    assert _run(detector, requests) == []
    assert detector._answered == 0
    assert len(detector._recent) == 200


def test_memory_stays_bounded() -> None:
    rng = np.random.default_rng(13)
    detector = _detector()
    _run(detector, _calls(rng, 500))
    for i in range(3_000):  # a new tool name every call
        detector.detect(Item(outputs=["fine " * 100], tool_calls=[ToolCall(f"t{i}", {})]))
    assert detector._learning is None
    assert len(detector._recent) == 200
    assert len(detector._tools) <= 200
    assert detector._tool_calls == sum(detector._tools.values()) == 200


def test_refusal_phrases() -> None:
    for text in [*REFUSALS, "i can't assist with that", "I must decline."]:
        assert REFUSAL.search(text), text
        assert is_refusal(text), text
        assert is_refusal("Let me check. " + text), text
    for text in [
        "I can help with that.",
        "Sorry for the wait, here is the report.",
        "The AI team can't attend.",
        "As an aide, I booked your flight.",
    ]:
        assert REFUSAL.search(text) is None, text
        assert not is_refusal(text), text
    assert not is_refusal("x" * 600 + REFUSALS[0])  # only the start of an answer is read


def test_psi() -> None:
    same = np.array([0.25, 0.25, 0.5])
    assert psi(same, same, 1e-4) == 0
    value = psi(np.array([0.5, 0.5]), np.array([0.9, 0.1]), 1e-4)
    assert value == pytest.approx(0.4 * np.log(1.8) + 0.4 * np.log(5))
