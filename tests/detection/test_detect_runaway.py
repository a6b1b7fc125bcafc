"""Agent runaway: action rate, tool loops and budgets per agent and conversation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from blastwall.detection.base import Finding, Item, SystemContext, ToolCall
from blastwall.detection.builtin.runaway import RunawayDetector

T0 = 1_700_000_000.0


def _detector(**settings: Any) -> RunawayDetector:
    return RunawayDetector(RunawayDetector.Config(**settings), SystemContext(system_id="s"))


def _call(
    time: float | None,
    name: str | None = "search",
    arguments: Any = None,
    *,
    conversation: str | None = "c1",
    agent: str | None = "planner",
    call_id: str | None = None,
    operation: str = "chat",
) -> Item:
    return Item(
        tool_calls=[ToolCall(name, arguments, call_id)],
        conversation_id=conversation,
        agent=agent,
        operation=operation,
        time=time,
    )


def _usage(time: float | None, tokens_in: int, tokens_out: int, **fields: Any) -> Item:
    fields.setdefault("conversation_id", "c1")
    fields.setdefault("agent", "planner")
    return Item(time=time, input_tokens=tokens_in, output_tokens=tokens_out, **fields)


def _run(detector: RunawayDetector, items: list[Item]) -> list[tuple[int, Finding]]:
    return [(n, f) for n, item in enumerate(items) for f in detector.detect(item)]


def _kinds(found: list[tuple[int, Finding]]) -> list[str]:
    return [f.kind for _, f in found]


# action rate


def test_forty_tool_calls_in_a_minute_fire_once_at_the_thirty_first() -> None:
    items = [_call(T0 + i * 1.5, arguments={"q": i}) for i in range(40)]
    found = _run(_detector(), items)
    assert _kinds(found) == ["agent_action_rate"]
    n, finding = found[0]
    assert n == 30
    assert finding.severity == "high"
    assert finding.archetype == "agentic_misalignment"
    assert finding.owasp == ("LLM06:2025",)
    assert finding.atlas == ("AML.T0034.002",)
    assert finding.key == "agent_action_rate:planner:c1"
    assert finding.attributes["value"] == 31
    assert finding.attributes["limit"] == 30
    assert finding.attributes["agent"] == "planner"
    assert finding.attributes["conversation"] == "c1"
    assert finding.attributes["tool"] == "search"
    assert finding.rests_on is not None
    assert len(finding.rests_on) == 31
    start = items[30].time
    assert start is not None
    assert all(i.time is not None and i.time > start - 60 for i in finding.rests_on)


def test_steady_pace_under_the_limit_never_fires() -> None:
    rng = np.random.default_rng(1)
    times = T0 + np.cumsum(rng.uniform(2.5, 3.5, 600))  # about 20 calls a minute, 30 minutes
    names = ["search", "fetch", "summarise"]
    items = [
        _call(float(t), names[i % 3], {"q": int(rng.integers(1_000_000))})
        for i, t in enumerate(times)
    ]
    assert _run(_detector(), items) == []


def test_rate_is_per_agent_and_conversation() -> None:
    items = []
    for i in range(50):  # 25 calls a minute in each of two conversations, 50 in all
        items.append(_call(T0 + i * 2.4, arguments={"q": i}, conversation="a"))
        items.append(_call(T0 + i * 2.4 + 0.5, arguments={"q": i}, conversation="b"))
    assert _run(_detector(), items) == []
    found = _run(_detector(actions_per_minute=20), items)
    assert sorted(f.key or "" for _, f in found) == [
        "agent_action_rate:planner:a",
        "agent_action_rate:planner:b",
    ]


def test_a_burst_fires_once_and_a_later_burst_again() -> None:
    detector = _detector()
    burst = [_call(T0 + i * 0.5, arguments={"q": i}) for i in range(200)]  # 100 s of 120/min
    assert _kinds(_run(detector, burst)) == ["agent_action_rate"]
    calm = [_call(T0 + 300 + i * 10, arguments={"q": i}) for i in range(12)]  # 6/min
    assert _run(detector, calm) == []
    again = [_call(T0 + 500 + i * 0.5, arguments={"q": i}) for i in range(40)]
    found = _run(detector, again)
    assert _kinds(found) == ["agent_action_rate"]
    assert found[0][0] == 30


def test_request_and_execution_of_one_call_count_once() -> None:
    items = []
    for i in range(25):  # 25 calls in 50 s, each asked for and then executed: 50 items
        arguments = {"q": i}
        items.append(_call(T0 + i * 2, arguments=arguments, call_id=f"call-{i}"))
        items.append(
            _call(
                T0 + i * 2 + 1, arguments=arguments, call_id=f"call-{i}", operation="execute_tool"
            )
        )
    assert _run(_detector(), items) == []
    without_ids = [
        _call(i.time, i.tool_calls[0].name, i.tool_calls[0].arguments, operation=i.operation)
        for i in items
    ]
    assert _run(_detector(), without_ids) == []
    # counted twice, they would be 50 actions in 50 s
    assert _kinds(_run(_detector(actions_per_minute=26), items)) == []
    assert _kinds(_run(_detector(actions_per_minute=24), items)) == ["agent_action_rate"]


def test_an_execution_without_a_recorded_call_counts_once() -> None:
    items = [
        Item(operation="execute_tool", conversation_id="c1", agent="a", time=T0 + i)
        for i in range(31)
    ]
    found = _run(_detector(), items)
    assert _kinds(found) == ["agent_action_rate"]
    assert found[0][1].attributes["value"] == 31


def test_slightly_out_of_order_items_still_count() -> None:
    rng = np.random.default_rng(7)
    times = np.sort(T0 + rng.uniform(0, 50, 40))
    order = np.arange(40)
    for i in range(0, 38, 3):  # swap neighbours: arrival is a little out of time order
        order[i], order[i + 1] = order[i + 1], order[i]
    items = [_call(float(times[j]), arguments={"q": int(j)}) for j in order]
    assert _kinds(_run(_detector(), items)) == ["agent_action_rate"]


# loops


def test_five_identical_calls_are_a_loop() -> None:
    items = [_call(T0 + i * 20, "read_file", {"path": "/etc/hosts", "n": 1}) for i in range(5)]
    found = _run(_detector(), items)
    assert _kinds(found) == ["agent_tool_loop"]
    n, finding = found[0]
    assert n == 4
    assert finding.owasp == ("LLM06:2025",)
    assert finding.atlas == ("AML.T0034.002", "AML.T0053")
    assert finding.attributes["tool"] == "read_file"
    assert finding.attributes["value"] == 5
    assert finding.key == "agent_tool_loop:planner:c1"
    assert finding.rests_on == items
    assert finding.excerpt == 'read_file({"n":1,"path":"/etc/hosts"})'
    assert finding.matched is not None and "read_file" in finding.matched


def test_four_identical_calls_or_varied_arguments_are_not_a_loop() -> None:
    assert _run(_detector(), [_call(T0 + i, "read_file", {"p": 1}) for i in range(4)]) == []
    varied = [_call(T0 + i, "read_file", {"p": i % 2}) for i in range(20)]
    assert _run(_detector(), varied) == []


def test_argument_order_does_not_matter() -> None:
    items = [
        _call(T0 + i, "write", {"a": 1, "b": [1, 2]} if i % 2 else {"b": [1, 2], "a": 1})
        for i in range(5)
    ]
    assert _kinds(_run(_detector(), items)) == ["agent_tool_loop"]


def test_loop_fires_once_until_a_different_call_breaks_it() -> None:
    detector = _detector()
    same = [_call(T0 + i * 5, "poll", {"job": 7}) for i in range(12)]
    found = _run(detector, same)
    assert [n for n, _ in found] == [4]
    assert _run(detector, [_call(T0 + 61, "poll", {"job": 8})]) == []
    found = _run(detector, [_call(T0 + 70 + i * 5, "poll", {"job": 7}) for i in range(5)])
    assert [(n, f.kind) for n, f in found] == [(4, "agent_tool_loop")]


def test_parallel_identical_calls_in_one_item_count() -> None:
    item = Item(
        tool_calls=[ToolCall("ping", {"host": "x"}) for _ in range(5)],
        conversation_id="c1",
        time=T0,
    )
    found = _detector().detect(item)
    assert [f.kind for f in found] == ["agent_tool_loop"]
    assert found[0].rests_on == [item]


def test_loops_without_time_are_found_but_rates_need_time() -> None:
    loop = [_call(None, "read_file", {"p": 1}) for _ in range(5)]
    assert _kinds(_run(_detector(), loop)) == ["agent_tool_loop"]
    fast = [_call(None, arguments={"q": i}) for i in range(200)]
    assert _run(_detector(), fast) == []
    heavy = [_usage(None, 100_000, 100_000) for _ in range(5)]
    assert _run(_detector(), heavy) == []


# budgets


def test_token_budget_exceeded_fires_once_and_again_after_the_window() -> None:
    detector = _detector()
    burn = [_usage(T0 + i * 10, 20_000, 10_000) for i in range(20)]  # 30k tokens each
    found = _run(detector, burn)
    assert _kinds(found) == ["agent_token_budget"]
    n, finding = found[0]
    assert n == 6  # 7 x 30k = 210k > 200k
    assert finding.attributes["value"] == 210_000
    assert finding.attributes["limit"] == 200_000
    assert finding.attributes["window_s"] == 600
    assert finding.owasp == ("LLM10:2025",)
    assert finding.atlas == ("AML.T0034.002",)
    assert finding.key == "agent_token_budget:planner:c1"
    assert finding.rests_on is not None and len(finding.rests_on) == 7
    # still over budget while the window holds: quiet; after a quiet window: armed again
    later = [_usage(T0 + 1_000 + i * 10, 1_000, 1_000) for i in range(3)]
    assert _run(detector, later) == []
    found = _run(detector, [_usage(T0 + 1_100, 150_000, 60_000)])
    assert _kinds(found) == ["agent_token_budget"]


def test_tokens_under_budget_or_spread_out_do_not_fire() -> None:
    rng = np.random.default_rng(3)
    spread = [  # ~24k tokens a minute: about 240k a day, 120k in any 10 minutes at most
        _usage(T0 + i * 60, int(rng.integers(8_000, 12_000)), int(rng.integers(2_000, 4_000)))
        for i in range(300)
    ]
    assert _run(_detector(), spread) == []
    assert _run(_detector(token_budget=None), [_usage(T0, 10**7, 10**7)]) == []


def test_agent_spans_do_not_count_their_model_calls_twice() -> None:
    items = [
        _usage(T0 + i, 50_000, 10_000, operation="chat" if i % 2 else "invoke_agent")
        for i in range(6)
    ]
    assert _run(_detector(), items) == []  # 3 chat calls, 180k: over 200k only if doubled
    assert _kinds(_run(_detector(token_budget=150_000), items)) == ["agent_token_budget"]


def test_spend_budget() -> None:
    detector = _detector(
        token_budget=None,
        spend_budget=1.0,
        cost_per_1k_input_tokens=0.01,
        cost_per_1k_output_tokens=0.03,
    )
    items = [_usage(T0 + i * 30, 10_000, 10_000) for i in range(5)]  # 0.40 each
    found = _run(detector, items)
    assert _kinds(found) == ["agent_spend_budget"]
    n, finding = found[0]
    assert n == 2
    assert finding.attributes["value"] == pytest.approx(1.2)
    assert finding.attributes["limit"] == 1.0
    assert finding.owasp == ("LLM10:2025",)
    assert finding.key == "agent_spend_budget:planner:c1"


def test_missing_agent_and_conversation_share_one_key() -> None:
    items = [_call(T0 + i, arguments={"q": i}, agent=None, conversation=None) for i in range(31)]
    found = _run(_detector(), items)
    assert [f.key for _, f in found] == ["agent_action_rate:-:-"]
    assert found[0][1].attributes["agent"] is None


# memory


def test_many_conversations_keep_memory_bounded() -> None:
    detector = _detector(max_keys=1_000)
    for i in range(20_000):
        detector.detect(_call(T0 + i * 0.001, arguments={"q": i}, conversation=f"c{i}"))
    assert len(detector._states) == 1_000
    detector = _detector()
    for i in range(30_000):  # a new conversation every second, each idle afterwards
        detector.detect(_call(T0 + i, arguments={"q": i}, conversation=f"c{i}"))
    assert len(detector._states) <= 700


def test_one_conversation_keeps_bounded_state() -> None:
    detector = _detector()
    for i in range(20_000):
        detector.detect(_call(T0 + i * 0.01, arguments={"q": i}))
        detector.detect(_usage(T0 + i * 0.01, 10, 10))
    (state,) = detector._states.values()
    assert len(state.recent) <= 50
    assert len(state.rate.buckets) <= 61
    assert len(state.usage.buckets) <= 61
    assert len(state.requested) <= 16


def test_config_is_checked() -> None:
    with pytest.raises(ValidationError):
        RunawayDetector.Config(loop_repeats=1)
    with pytest.raises(ValidationError):
        RunawayDetector.Config(unknown=1)  # type: ignore[call-arg]  # the unknown field is the point
