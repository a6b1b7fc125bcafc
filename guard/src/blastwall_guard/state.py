"""The guard's local copy of a system's control state, compiled for checks that cost a few
dictionary look-ups."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from blastwall_guard.names import tool_key


def _epoch(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def cite(control: dict[str, Any]) -> str:
    """The control in words: what, who set it under which incident and why, where the
    server shows those (it does not for a restricted incident)."""
    if control.get("set_by") is None:
        return f"{control['control']} (action {control['action_id']}) under a restricted incident"
    asked = control.get("requested_by")
    who = control["set_by"] + (
        f" (asked by {asked})" if asked and asked != control["set_by"] else ""
    )
    return (
        f"{control['control']} set by {who} under incident "
        f"{control['incident_id']} (action {control['action_id']}): {control['reason']}"
    )


@dataclass
class View:
    """What is in force, by control; built once per state received."""

    revision: int = -1
    fallback: str | None = None
    unavailable: str | None = None
    suspended: dict[str, Any] | None = None
    suspended_agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    fallback_control: dict[str, Any] | None = None
    revoked: dict[str, dict[str, Any]] = field(default_factory=dict)
    approval_all: dict[str, Any] | None = None
    approval: dict[str, dict[str, Any]] = field(default_factory=dict)
    prompt_pins: dict[str | None, str] = field(default_factory=dict)
    model_pins: dict[str | None, str] = field(default_factory=dict)
    blocks: list[tuple[re.Pattern[str], dict[str, Any]]] = field(default_factory=list)
    quarantine: dict[str, Any] | None = None
    per_minute: int | None = None
    rate_control: dict[str, Any] | None = None
    next_expiry: float | None = None
    #: Canonical names of the tools and agents the inventory declares (None: not told).
    tools: frozenset[str] | None = None
    agents: frozenset[str] | None = None
    #: Content hashes of the pinned prompt versions, by prompt id.
    prompt_hashes: dict[str | None, str] = field(default_factory=dict)
    #: How many controls are in force (not expired).
    in_force: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def compile_state(state: dict[str, Any], *, now: float) -> View:
    """A view of the `state` sent by the server, without the controls expired at `now`."""
    view = View(revision=int(state["revision"]), fallback=state.get("fallback"), raw=state)
    if state.get("tools") is not None:
        view.tools = frozenset(tool_key(t) for t in state["tools"])
    if state.get("agents") is not None:
        view.agents = frozenset(tool_key(a) for a in state["agents"])
    for control in state["controls"]:
        expires = _epoch(control.get("expires_at"))
        if expires is not None:
            if expires <= now:
                continue
            view.next_expiry = (
                expires if view.next_expiry is None else min(view.next_expiry, expires)
            )
        view.in_force += 1
        kind, params = control["control"], control.get("params") or {}
        if kind == "suspend":
            if params.get("agent"):
                view.suspended_agents[tool_key(params["agent"])] = control
            else:
                view.suspended = control
        elif kind == "manual_fallback":
            view.fallback_control = control
        elif kind == "revoke_tool":
            view.revoked[tool_key(params["tool"])] = control
        elif kind == "require_approval":
            if params.get("all"):
                view.approval_all = control
            else:
                view.approval[tool_key(params["tool"])] = control
        elif kind == "pin_prompt_version":
            view.prompt_pins[params.get("prompt")] = params["version"]
            if params.get("content_hash"):
                view.prompt_hashes[params.get("prompt")] = params["content_hash"]
        elif kind == "pin_model_version":
            view.model_pins[params.get("model")] = params["version"]
        elif kind == "block_input":
            view.blocks.extend((re.compile(p), control) for p in params["patterns"])
        elif kind == "quarantine_output":
            view.quarantine = control
        elif kind == "rate_limit":
            limit = int(params["per_minute"])
            if view.per_minute is None or limit < view.per_minute:
                view.per_minute, view.rate_control = limit, control
    return view


def unreachable(reason: str) -> View:
    """The view of a guard failing closed: every check is refused with `reason`."""
    return View(unavailable=reason)
