"""Agent runaway: an agent that acts too fast, repeats itself or burns through its budget.

State is kept per agent and conversation (the key; "-" stands for a missing one):

* `agent_action_rate`: more than `actions_per_minute` tool calls in the last 60 s of event
  time;
* `agent_tool_loop`: the same tool with the same arguments (compared as canonical JSON)
  `loop_repeats` times in a row;
* `agent_token_budget`: more than `token_budget` tokens (input plus output) within
  `token_window_s`;
* `agent_spend_budget`: more than `spend_budget` spent within `token_window_s`, priced by
  `cost_per_1k_input_tokens` and `cost_per_1k_output_tokens`.

An action is one tool call. A model asking for a call and the `execute_tool` span that runs it
are the same action: the second of the pair (same call id, or, without ids, same tool and
arguments) is not counted again. An `execute_tool` item without a recorded call counts once.
Tokens are counted from the operations in `token_operations` (model calls, by default), so an
agent span that sums up its model calls does not count them twice.

Each finding fires once per episode: not again for the same key and kind until the condition
has cleared (the rate is back under the limit, a different call broke the loop, the window
has moved on and the budget is no longer exceeded). Rates and budgets need event time; items
without `time` (plain text in `blastwall scan`) are only checked for loops.

Memory is bounded: at most `max_keys` keys (least recently seen dropped first), keys idle
for longer than the longest window are dropped as newer items arrive, windows are kept in
coarse time buckets, and at most 50 items per key are held for `rests_on`.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from typing import Any

from pydantic import Field

from blastwall.detection.base import Detector, DetectorConfig, Finding, Item, SystemContext

__all__ = ["RunawayConfig", "RunawayDetector"]

RATE_WINDOW_S = 60.0
REST_CAP = 50
"""Items a finding rests on, and items held per key for that."""
_PENDING_CAP = 16
"""Counted calls per key kept to recognise the other half of a request/execution pair."""
_BUCKETS = 60
"""Time buckets per window: a window's totals are exact to 1/60 of its length."""
_EXCERPT_CHARS = 200
_SWEEP_EVERY = 8
"""Timed items between two sweeps for idle keys."""


class RunawayConfig(DetectorConfig):
    actions_per_minute: int = Field(
        30, ge=1, description="Tool calls per agent and conversation in 60 s above which it fires."
    )
    loop_repeats: int = Field(
        5, ge=2, description="The same tool call (name and arguments) this many times in a row."
    )
    token_budget: int | None = Field(
        200_000, ge=1, description="Tokens per conversation within `token_window_s`; None: off."
    )
    token_window_s: float = Field(
        600.0, gt=0, description="The window, in seconds, of the token and spend budgets."
    )
    spend_budget: float | None = Field(
        None, gt=0, description="Spend per conversation within `token_window_s`; None: off."
    )
    cost_per_1k_input_tokens: float = Field(0.0, ge=0, description="Price of 1,000 input tokens.")
    cost_per_1k_output_tokens: float = Field(0.0, ge=0, description="Price of 1,000 output tokens.")
    token_operations: list[str] = Field(
        default_factory=lambda: ["chat", "text_completion", "embeddings"],
        description="Operations whose token counts are added up.",
    )
    max_keys: int = Field(
        10_000, ge=1, description="Agent/conversation pairs tracked at once (least recent go)."
    )


class _Window:
    """Totals of (amount, cost) over the last `length` seconds, kept in coarse buckets."""

    __slots__ = ("amount", "buckets", "cost", "length", "width")

    def __init__(self, length: float) -> None:
        self.length = length
        self.width = length / _BUCKETS
        self.buckets: deque[list[float]] = deque()
        self.amount = 0.0
        self.cost = 0.0

    def prune(self, now: float) -> None:
        cutoff = now - self.length
        buckets = self.buckets
        while buckets and buckets[0][0] <= cutoff:
            _, amount, cost = buckets.popleft()
            self.amount -= amount
            self.cost -= cost
        if not buckets:
            self.amount = self.cost = 0.0

    def add(self, time: float, amount: float, cost: float = 0.0) -> None:
        buckets = self.buckets
        if buckets and time < buckets[-1][0] + self.width:
            last = buckets[-1]  # late arrivals join the newest bucket
            last[1] += amount
            last[2] += cost
        else:
            buckets.append([time, amount, cost])
        self.amount += amount
        self.cost += cost


class _KeyState:
    __slots__ = (
        "executed",
        "fired",
        "last_time",
        "loop_arguments",
        "loop_count",
        "loop_items",
        "loop_signature",
        "rate",
        "recent",
        "requested",
        "usage",
    )

    def __init__(self, token_window_s: float) -> None:
        self.last_time: float | None = None
        self.fired: set[str] = set()
        self.rate = _Window(RATE_WINDOW_S)
        self.usage = _Window(token_window_s)
        # counted calls (call id, signature) not yet paired with their other half
        self.requested: deque[tuple[str | None, int]] = deque(maxlen=_PENDING_CAP)
        self.executed: deque[tuple[str | None, int]] = deque(maxlen=_PENDING_CAP)
        self.recent: deque[Item] = deque(maxlen=REST_CAP)
        self.loop_signature: int | None = None
        self.loop_count = 0
        self.loop_arguments: Any = None
        self.loop_items: deque[Item] = deque(maxlen=REST_CAP)


def _signature(name: str, arguments: Any) -> int:
    """The same for the same tool with the same arguments, whatever the order of their keys.
    Flat arguments are compared as Python values (so 1, 1.0 and true are alike), nested ones
    as canonical JSON."""
    if isinstance(arguments, dict):
        try:
            return hash((name, frozenset(arguments.items())))
        except TypeError:  # nested values
            pass
    elif arguments is None or isinstance(arguments, str):
        return hash((name, arguments))
    return hash((name, _canonical(arguments)))


def _canonical(arguments: Any) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    try:
        return json.dumps(
            arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
    except (TypeError, ValueError):  # keys of mixed types, circular structures
        return repr(arguments)


class RunawayDetector(Detector):
    id = "agent_runaway"
    version = "1.0.0"
    description = (
        "Agents acting too fast, repeating the same tool call in a loop, or exceeding their "
        "token or spend budget, per agent and conversation."
    )
    stateful = True
    Config = RunawayConfig

    def __init__(self, config: DetectorConfig, context: SystemContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, RunawayConfig)
        self.settings = config
        self._token_operations = frozenset(config.token_operations)
        self._states: OrderedDict[tuple[str, str], _KeyState] = OrderedDict()
        self._watermark: float | None = None
        self._timed_items = 0
        budgets = config.token_budget is not None or config.spend_budget is not None
        self._idle_after = max(RATE_WINDOW_S, config.token_window_s if budgets else 0.0)

    def detect(self, item: Item) -> list[Finding]:
        tokens, cost = self._usage(item)
        if not item.tool_calls and item.operation != "execute_tool" and not tokens:
            return []
        state = self._state(item)
        state.recent.append(item)
        actions = self._new_actions(state, item)
        findings: list[Finding] = []
        if actions:
            self._check_loop(state, item, actions, findings)
        now = state.last_time
        if now is not None and item.time is not None:
            if actions:
                self._check_rate(state, item, now, len(actions), findings)
            if tokens:
                self._check_budgets(state, item, now, tokens, cost, findings)
        return findings

    # keys and actions

    def _state(self, item: Item) -> _KeyState:
        key = (item.agent or "-", item.conversation_id or "-")
        states = self._states
        state = states.get(key)
        if state is None:
            state = states[key] = _KeyState(self.settings.token_window_s)
            if len(states) > self.settings.max_keys:
                states.popitem(last=False)
        else:
            states.move_to_end(key)
        time = item.time
        if time is not None:
            if state.last_time is None or time > state.last_time:
                state.last_time = time
            if self._watermark is None or time > self._watermark:
                self._watermark = time
            self._timed_items += 1
            if not self._timed_items % _SWEEP_EVERY:
                self._drop_idle(self._watermark - self._idle_after)
        return state

    def _drop_idle(self, cutoff: float) -> None:
        """Drop the least recently seen keys that have been idle past every window; a few
        at a time, so that the cost stays flat."""
        states = self._states
        for _ in range(2 * _SWEEP_EVERY):
            if len(states) < 2:
                return
            key, oldest = next(iter(states.items()))
            if oldest.last_time is None or oldest.last_time >= cutoff:
                return
            del states[key]

    def _new_actions(self, state: _KeyState, item: Item) -> list[tuple[str, int | None, Any]]:
        """The item's tool calls not already counted, as (name, signature, arguments); the
        signature is None for an execution whose call was not recorded."""
        executed = item.operation == "execute_tool"
        if not item.tool_calls:
            return [("(unknown tool)", None, None)] if executed else []
        mine, other = (
            (state.executed, state.requested) if executed else (state.requested, state.executed)
        )
        actions: list[tuple[str, int | None, Any]] = []
        for call in item.tool_calls:
            name = call.name or "(unnamed)"
            signature = _signature(name, call.arguments)
            if other and _paired(other, call.call_id, signature):
                continue
            mine.append((call.call_id, signature))
            actions.append((name, signature, call.arguments))
        return actions

    # the checks

    def _check_loop(
        self,
        state: _KeyState,
        item: Item,
        actions: list[tuple[str, int | None, Any]],
        findings: list[Finding],
    ) -> None:
        limit = self.settings.loop_repeats
        for name, signature, arguments in actions:
            if signature is None:
                continue
            if signature != state.loop_signature:
                state.loop_signature = signature
                state.loop_count = 0
                state.loop_items.clear()
                state.loop_arguments = arguments
                state.fired.discard("agent_tool_loop")
            state.loop_count += 1
            if not state.loop_items or state.loop_items[-1] is not item:
                state.loop_items.append(item)
            if state.loop_count >= limit and "agent_tool_loop" not in state.fired:
                state.fired.add("agent_tool_loop")
                agent, conversation = item.agent or "-", item.conversation_id or "-"
                findings.append(
                    self._finding(
                        "agent_tool_loop",
                        item,
                        summary=f"{_who(item)} called {name} with the same arguments "
                        f"{state.loop_count} times in a row",
                        value=state.loop_count,
                        limit=limit,
                        tool=name,
                        window_s=None,
                        rests_on=list(state.loop_items),
                        excerpt=f"{name}({_canonical(state.loop_arguments)})"[:_EXCERPT_CHARS],
                        matched=f"{agent} {conversation} {name}",
                        confidence=0.9,
                    )
                )

    def _check_rate(
        self, state: _KeyState, item: Item, now: float, count: int, findings: list[Finding]
    ) -> None:
        limit = self.settings.actions_per_minute
        window = state.rate
        window.prune(now)
        if window.amount <= limit:
            state.fired.discard("agent_action_rate")
        assert item.time is not None
        window.add(item.time, count)
        measured = round(window.amount)
        if measured <= limit or "agent_action_rate" in state.fired:
            return
        state.fired.add("agent_action_rate")
        items = [
            i
            for i in _within(state.recent, now - RATE_WINDOW_S)
            if i.tool_calls or i.operation == "execute_tool"
        ]
        tools = Counter(
            call.name or "(unnamed)" for i in items for call in i.tool_calls
        ).most_common(1)
        tool = tools[0][0] if tools else None
        findings.append(
            self._finding(
                "agent_action_rate",
                item,
                summary=f"{_who(item)} made {measured} tool calls in the last minute "
                f"(limit {limit})",
                value=measured,
                limit=limit,
                tool=tool,
                window_s=RATE_WINDOW_S,
                rests_on=items,
                confidence=0.8,
            )
        )

    def _check_budgets(
        self,
        state: _KeyState,
        item: Item,
        now: float,
        tokens: int,
        cost: float,
        findings: list[Finding],
    ) -> None:
        settings = self.settings
        window = state.usage
        window.prune(now)
        budgets: list[tuple[str, float]] = []
        if settings.token_budget is not None:
            budgets.append(("agent_token_budget", float(settings.token_budget)))
        if settings.spend_budget is not None:
            budgets.append(("agent_spend_budget", settings.spend_budget))
        for kind, budget in budgets:
            if _measure(window, kind) <= budget:
                state.fired.discard(kind)
        assert item.time is not None
        window.add(item.time, tokens, cost)
        for kind, budget in budgets:
            measured = _measure(window, kind)
            if measured <= budget or kind in state.fired:
                continue
            state.fired.add(kind)
            span = settings.token_window_s
            if kind == "agent_token_budget":
                value: float = round(measured)
                summary = (
                    f"{_who(item)} used {value:,} tokens in {span:g} s "
                    f"(budget {settings.token_budget:,})"
                )
            else:
                value = round(measured, 4)
                summary = f"{_who(item)} spent {value:,.2f} in {span:g} s (budget {budget:,.2f})"
            findings.append(
                self._finding(
                    kind,
                    item,
                    summary=summary,
                    value=value,
                    limit=budget if kind == "agent_spend_budget" else int(budget),
                    tool=None,
                    window_s=span,
                    rests_on=[
                        i
                        for i in _within(state.recent, now - span)
                        if i.operation in self._token_operations
                    ],
                    confidence=0.95,
                )
            )

    def _usage(self, item: Item) -> tuple[int, float]:
        if item.operation not in self._token_operations:
            return 0, 0.0
        tokens_in = max(item.input_tokens or 0, 0)
        tokens_out = max(item.output_tokens or 0, 0)
        settings = self.settings
        cost = (
            tokens_in * settings.cost_per_1k_input_tokens
            + tokens_out * settings.cost_per_1k_output_tokens
        ) / 1000
        return tokens_in + tokens_out, cost

    def _finding(
        self,
        kind: str,
        item: Item,
        *,
        summary: str,
        value: float,
        limit: float,
        tool: str | None,
        window_s: float | None,
        rests_on: list[Item],
        confidence: float,
        excerpt: str | None = None,
        matched: str | None = None,
    ) -> Finding:
        agent, conversation = item.agent or "-", item.conversation_id or "-"
        budget = kind in ("agent_token_budget", "agent_spend_budget")
        atlas = ("AML.T0034.002", "AML.T0053") if kind == "agent_tool_loop" else ("AML.T0034.002",)
        return Finding(
            kind=kind,
            archetype="agentic_misalignment",
            severity="high",
            confidence=confidence,
            summary=summary,
            excerpt=excerpt,
            matched=matched if matched is not None else f"{agent} {conversation}",
            owasp=("LLM10:2025",) if budget else ("LLM06:2025",),
            atlas=atlas,
            attributes={
                "value": value,
                "limit": limit,
                "window_s": window_s,
                "agent": item.agent,
                "conversation": item.conversation_id,
                "tool": tool,
            },
            key=f"{kind}:{agent}:{conversation}",
            rests_on=rests_on[-REST_CAP:],
        )


def _paired(other: deque[tuple[str | None, int]], call_id: str | None, signature: int) -> bool:
    """Whether this call is the other half of one counted already (a request and its
    execution): the same call id, or, where either has none, the same signature. The
    match is used up."""
    for index, (seen_id, seen_signature) in enumerate(other):
        if call_id is not None and seen_id is not None:
            same = seen_id == call_id
        else:
            same = seen_signature == signature
        if same:
            del other[index]
            return True
    return False


def _measure(window: _Window, kind: str) -> float:
    return window.amount if kind == "agent_token_budget" else window.cost


def _within(items: Iterable[Item], since: float) -> list[Item]:
    return [i for i in items if i.time is not None and i.time > since]


def _who(item: Item) -> str:
    agent = f"Agent {item.agent}" if item.agent else "An unnamed agent"
    if item.conversation_id:
        return f"{agent} in conversation {item.conversation_id}"
    return agent
