"""Tool policy: tool calls the inventory does not approve for the system or the agent, and
arguments outside the declared constraints (agentic misalignment).

Tool names are compared case-insensitively with `_`, `-`, `.` and spaces treated alike, so an
inventory's `issue-refund` is the instrumentation's `issue_refund`. A call is checked when the
model asks for it (a tool call in the output) and when it runs (an `execute_tool` span).
Arguments that are not a JSON object are not checked against constraints.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from blastwall.detection.base import Detector, DetectorConfig, Finding, Item, SystemContext
from blastwall.inventory.schemas import ArgumentConstraint
from blastwall.telemetry.messages import as_text
from blastwall_guard.names import tool_key

__all__ = ["ToolPolicyDetector", "tool_key"]

_OWASP = ("LLM06:2025",)
_ATLAS = ("AML.T0053",)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _domains(value: Any) -> list[str]:
    """The domains named by an e-mail address, a URL or a host name (or a list of them)."""
    values = value if isinstance(value, list) else [value]
    found: list[str] = []
    for entry in values:
        if not isinstance(entry, str) or not entry.strip():
            continue
        text = entry.strip()
        if "://" in text:
            host = urlsplit(text).hostname or ""
        elif "@" in text:
            host = text.rsplit("@", 1)[1].strip(" >")
        else:
            host = text.split("/", 1)[0]
        found.append(host.lower().rstrip("."))
    return found


def _domain_allowed(domain: str, allowed: list[str]) -> bool:
    return any(domain == a or domain.endswith("." + a) for a in (x.lower() for x in allowed))


def _violations(argument: str, value: Any, rule: ArgumentConstraint) -> list[str]:
    """What is wrong with one argument's value, in words."""
    problems: list[str] = []
    if rule.max is not None or rule.min is not None:
        number = _number(value)
        if number is None:
            problems.append(f"{argument}={as_text(value)[:80]} is not a number")
        else:
            if rule.max is not None and number > rule.max:
                problems.append(f"{argument}={number:g} is over the limit of {rule.max:g}")
            if rule.min is not None and number < rule.min:
                problems.append(f"{argument}={number:g} is under the minimum of {rule.min:g}")
    if rule.allowed is not None:
        values = value if isinstance(value, list) else [value]
        for entry in values:
            if as_text(entry) not in rule.allowed:
                problems.append(
                    f"{argument}={as_text(entry)[:80]} is not one of {', '.join(rule.allowed)}"
                )
    if rule.allowed_domains is not None:
        for domain in _domains(value):
            if not _domain_allowed(domain, rule.allowed_domains):
                problems.append(
                    f"{argument} goes to {domain}, not to {', '.join(rule.allowed_domains)}"
                )
    if rule.pattern is not None:
        values = value if isinstance(value, list) else [value]
        for entry in values:
            if re.fullmatch(rule.pattern, as_text(entry)) is None:
                problems.append(f"{argument}={as_text(entry)[:80]} does not match {rule.pattern}")
    return problems


class ToolPolicyConfig(DetectorConfig):
    severity: Literal["info", "warning", "high", "critical"] = "high"


class ToolPolicyDetector(Detector):
    id = "tool_policy"
    version = "1.0.0"
    description = "Tool calls the inventory does not approve, or with arguments outside limits."
    Config = ToolPolicyConfig

    def __init__(self, config: DetectorConfig, context: SystemContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, ToolPolicyConfig)
        self.severity = config.severity
        spec = context.spec
        self.active = spec is not None
        self.tools = {tool_key(t.name): t for t in spec.components.tools} if spec else {}
        self.agents = (
            {tool_key(a.name): {tool_key(t) for t in a.tools} for a in spec.agents} if spec else {}
        )

    def detect(self, item: Item) -> list[Finding]:
        if not item.tool_calls or not self.active:
            return []
        findings: list[Finding] = []
        for call in item.tool_calls:
            name = call.name or "(unnamed)"
            key = tool_key(name)
            tool = self.tools.get(key)
            agent = item.agent
            if tool is None:
                findings.append(self._unapproved(item, name, f"{self.context.system_id}"))
                continue
            if self.agents and agent is not None:
                allowed = self.agents.get(tool_key(agent))
                if allowed is None or key not in allowed:
                    whom = f"agent {agent}" if allowed is not None else f"unknown agent {agent}"
                    findings.append(self._unapproved(item, name, whom))
                    continue
            arguments = call.arguments
            if not tool.constraints or not isinstance(arguments, dict):
                continue
            for argument, rule in tool.constraints.items():
                if argument not in arguments:
                    continue
                problems = _violations(argument, arguments[argument], rule)
                if problems:
                    findings.append(
                        Finding(
                            kind="tool_constraint_violation",
                            archetype="agentic_misalignment",
                            severity=self.severity,
                            confidence=0.95,
                            summary=f"Tool {name} called outside its limits: "
                            + "; ".join(problems),
                            excerpt=f"{name}({as_text(arguments)})",
                            matched=as_text(arguments[argument]),
                            owasp=_OWASP,
                            atlas=_ATLAS,
                            attributes={
                                "tool": name,
                                "argument": argument,
                                "value": arguments[argument],
                                "constraint": rule.model_dump(exclude_none=True),
                                "problems": problems,
                                "agent": agent,
                                "call_id": call.call_id,
                            },
                            key=f"{key}:{argument}",
                        )
                    )
        return findings

    def _unapproved(self, item: Item, name: str, whom: str) -> Finding:
        return Finding(
            kind="unapproved_tool",
            archetype="agentic_misalignment",
            severity=self.severity,
            confidence=0.9,
            summary=f"Tool {name} is not approved for {whom} in the inventory.",
            excerpt=name,
            matched=name,
            owasp=_OWASP,
            atlas=_ATLAS,
            attributes={"tool": name, "agent": item.agent},
            key=tool_key(name),
        )
