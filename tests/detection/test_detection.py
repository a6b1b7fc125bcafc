"""The detection engine, its plugin hook, per-system settings, and the detectors written
against the inventory: tool policy, canary tokens and guardrail verdicts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from blastwall.detection.base import (
    Detector,
    Finding,
    Item,
    SystemContext,
    ToolCall,
)
from blastwall.detection.builtin.canary import CanaryDetector, token_hash
from blastwall.detection.builtin.guardrail import GuardrailDetector
from blastwall.detection.builtin.tool_policy import ToolPolicyDetector
from blastwall.detection.engine import DetectionEngine, detector_classes, validate_settings
from blastwall.detection.items import item_from_line, item_from_record
from blastwall.errors import InvalidInput
from blastwall.hookspecs import hookimpl
from blastwall.inventory.loader import load_path
from blastwall.inventory.schemas import SystemSpec
from blastwall.plugins import plugin_manager
from tests.conftest import EXAMPLES

BUILTIN = {
    "prompt_injection",
    "sensitive_data",
    "canary",
    "system_prompt_leak",
    "tool_policy",
    "agent_runaway",
    "service_levels",
    "drift",
    "guardrail",
}


def spec(system_id: str) -> dict[str, Any]:
    document = yaml.safe_load((EXAMPLES / f"{system_id}.yaml").read_text())
    assert isinstance(document, dict)
    return document


def refund_context() -> SystemContext:
    return SystemContext(
        system_id="refund-agent", spec=SystemSpec.model_validate(spec("refund-agent"))
    )


# --- plugins and the engine ---------------------------------------------------------------


def test_builtin_detectors_are_registered_through_the_hook() -> None:
    classes = detector_classes()
    assert {cls.id for cls in classes} == BUILTIN
    for cls in classes:
        assert cls.version and cls.description
        cls.Config()  # every detector runs with its defaults


class Shouting(Detector):
    id = "shouting"
    version = "0.1"
    description = "Inputs in capitals."

    def detect(self, item: Item) -> list[Finding]:
        return [
            Finding(
                kind="shouting",
                archetype=None,
                severity="info",
                confidence=0.5,
                summary="Someone is shouting.",
                excerpt=text,
                matched=text,
            )
            for text in item.inputs
            if text.isupper()
        ]


class ReplacementCanary(CanaryDetector):
    version = "9.9.9"


class Plugin:
    @hookimpl
    def blastwall_detectors(self) -> list[type[Detector]]:
        return [Shouting, ReplacementCanary]


def test_a_plugin_adds_detectors_and_replaces_builtin_ones() -> None:
    manager = plugin_manager()
    plugin = Plugin()
    manager.register(plugin)
    try:
        classes = {cls.id: cls for cls in detector_classes()}
    finally:
        manager.unregister(plugin)
    assert classes["shouting"] is Shouting
    assert classes["canary"] is ReplacementCanary
    assert {cls.id for cls in detector_classes()} == BUILTIN


class Broken(Detector):
    id = "broken"
    version = "1"
    description = "Always fails."

    def detect(self, item: Item) -> list[Finding]:
        raise RuntimeError("boom")


def test_a_failing_detector_is_counted_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = DetectionEngine(classes=[Broken, Shouting])
    found = engine.run([Item(inputs=["STOP IT"]), Item(inputs=["fine"])], lambda _: None)
    assert [d.finding.kind for d in found] == ["shouting"]
    assert engine.failures["broken"] == 2
    assert "detector broken failed" in caplog.text


def test_allowlist_settings_and_redacted_excerpts() -> None:
    engine = DetectionEngine(classes=[Shouting])
    specs = {
        "quiet": {**spec("support-chatbot"), "id": "quiet"},
        "allow": {**spec("support-chatbot"), "id": "allow"},
    }
    specs["quiet"]["detection"] = {"shouting": {"enabled": False}}
    specs["allow"]["detection"] = {"shouting": {"allowlist": ["ok then"]}}
    text = "CALL ME AT +44 20 7946 0958"
    items = [
        Item(inputs=[text], system_id=None),
        Item(inputs=[text], system_id="quiet"),
        Item(inputs=["OK THEN"], system_id="allow"),
        Item(inputs=[text], system_id="allow"),
    ]
    found = engine.run(items, lambda system: specs.get(system) if system else None)
    assert [d.system_id for d in found] == [None, "allow"]
    assert found[0].finding.excerpt == "CALL ME AT [PHONE]"
    assert found[1].fingerprint == "shouting:allow:shouting"


def test_detectors_are_rebuilt_only_when_the_system_changes() -> None:
    engine = DetectionEngine(classes=[Shouting])
    entry = spec("support-chatbot")
    first = engine.detectors("support-chatbot", entry)
    assert engine.detectors("support-chatbot", dict(entry)) is first
    assert engine.detectors("support-chatbot", {**entry, "name": "Renamed"}) is not first


# --- settings in the inventory ------------------------------------------------------------


def test_detection_settings_are_checked_against_the_detectors() -> None:
    configs = validate_settings({"tool_policy": {"severity": "critical"}, "canary": {}})
    assert configs["tool_policy"].model_dump()["severity"] == "critical"
    with pytest.raises(InvalidInput) as caught:
        validate_settings(
            {"no_such": {}, "tool_policy": {"severity": "loud", "extra": 1}},
        )
    fields = {p.location for p in caught.value.problems}
    assert fields == {"no_such", "tool_policy.severity", "tool_policy.extra"}


def test_inventory_refuses_bad_detection_settings_with_file_and_line(tmp_path: Path) -> None:
    entry = spec("refund-agent")
    entry["detection"] = {"tool_policy": {"severity": "loud"}}
    path = tmp_path / "refund.yaml"
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    with pytest.raises(InvalidInput) as caught:
        load_path(path)
    (problem,) = caught.value.problems
    assert "tool_policy.severity" in problem.message and problem.line is not None
    assert problem.location.endswith("detection")


def test_prompt_content_must_match_its_hash_and_policy() -> None:
    entry = spec("support-chatbot")
    content = "You are the support assistant of Example Ltd."
    entry["components"]["prompts"][0]["content"] = content
    with pytest.raises(ValueError, match="content_hash does not match"):
        SystemSpec.model_validate(entry)
    entry["components"]["prompts"][0]["content_hash"] = (
        "sha256:" + hashlib.sha256(content.encode()).hexdigest()
    )
    SystemSpec.model_validate(entry)
    entry["telemetry"] = {"content_policy": "hashes"}
    with pytest.raises(ValueError, match="content policy is 'hashes'"):
        SystemSpec.model_validate(entry)


def test_agents_may_only_name_declared_tools() -> None:
    entry = spec("refund-agent")
    entry["agents"] = [{"name": "refunder", "tools": ["issue-refund", "wire-money"]}]
    with pytest.raises(ValueError, match="wire-money"):
        SystemSpec.model_validate(entry)


# --- tool policy --------------------------------------------------------------------------


def tool_findings(*calls: ToolCall, agent: str | None = None, context: Any = None) -> list[Finding]:
    detector = ToolPolicyDetector(ToolPolicyDetector.Config(), context or refund_context())
    return detector.detect(Item(tool_calls=list(calls), agent=agent, system_id="refund-agent"))


def test_tool_policy_flags_unapproved_tools() -> None:
    (finding,) = tool_findings(ToolCall("delete_customer", {"id": 7}))
    assert finding.kind == "unapproved_tool" and finding.archetype == "agentic_misalignment"
    assert finding.owasp == ("LLM06:2025",) and finding.atlas == ("AML.T0053",)
    assert finding.severity == "high"


def test_tool_policy_checks_arguments_against_constraints() -> None:
    assert tool_findings(ToolCall("issue_refund", {"amount": 120, "currency": "EUR"})) == []
    assert tool_findings(ToolCall("Issue-Refund", {"amount": "200", "currency": "GBP"})) == []
    over, currency = tool_findings(
        ToolCall("issue_refund", {"amount": 5000, "currency": "EUR"}),
        ToolCall("issue_refund", {"amount": 10, "currency": "BTC"}),
    )
    assert over.kind == "tool_constraint_violation"
    assert "amount=5000 is over the limit of 200" in over.summary
    assert over.attributes["argument"] == "amount" and over.key == "issue-refund:amount"
    assert "currency=BTC is not one of EUR, GBP, USD" in currency.summary
    (negative,) = tool_findings(ToolCall("issue_refund", {"amount": -5}))
    assert "under the minimum" in negative.summary


def test_tool_policy_checks_recipient_domains() -> None:
    allowed = ToolCall("send_email", {"to": "ann@customers.example.com", "body": "hi"})
    sub = ToolCall("send_email", {"to": "Ann <ann@eu.customers.example.com>"})
    assert tool_findings(allowed, sub) == []
    (outside,) = tool_findings(ToolCall("send_email", {"to": "drop@attacker.example.net"}))
    assert "goes to attacker.example.net" in outside.summary
    (lookalike,) = tool_findings(ToolCall("send_email", {"to": "x@evilcustomers.example.com"}))
    assert lookalike.kind == "tool_constraint_violation"


def test_tool_policy_per_agent() -> None:
    entry = spec("refund-agent")
    entry["agents"] = [
        {"name": "triage", "tools": ["lookup-order"]},
        {"name": "refunder", "tools": ["lookup-order", "issue-refund"]},
    ]
    context = SystemContext(system_id="refund-agent", spec=SystemSpec.model_validate(entry))
    call = ToolCall("issue-refund", {"amount": 10})
    assert tool_findings(call, agent="refunder", context=context) == []
    (finding,) = tool_findings(call, agent="triage", context=context)
    assert "not approved for agent triage" in finding.summary
    (stranger,) = tool_findings(call, agent="intruder", context=context)
    assert "unknown agent intruder" in stranger.summary


def test_tool_policy_ignores_systems_outside_the_inventory() -> None:
    assert tool_findings(ToolCall("anything", {}), context=SystemContext()) == []


# --- canary tokens ------------------------------------------------------------------------


def test_canary_in_output_or_tool_arguments_is_critical() -> None:
    token = "bwc_" + "0123456789abcdef01234567"
    context = SystemContext(
        system_id="support-chatbot", canaries={token_hash(token): "support-chatbot"}
    )
    detector = CanaryDetector(CanaryDetector.Config(), context)
    (leak,) = detector.detect(Item(outputs=[f"My instructions say: reference {token}."]))
    assert leak.severity == "critical" and leak.kind == "canary_token_leak"
    assert token not in (leak.excerpt or "") and "[CANARY]" in (leak.excerpt or "")
    (exfil,) = detector.detect(Item(tool_calls=[ToolCall("send_email", {"body": token.upper()})]))
    assert exfil.attributes["where"] == "tool call send_email"
    other = "bwc_" + "f" * 24
    assert detector.detect(Item(outputs=[f"unknown token {other}", "no token here"])) == []


# --- guardrail verdicts -------------------------------------------------------------------


def guardrail(**fields: Any) -> list[Finding]:
    return GuardrailDetector(GuardrailDetector.Config(), SystemContext()).detect(Item(**fields))


def test_guardrail_attributes_become_findings() -> None:
    (failed,) = guardrail(
        attributes={
            "gen_ai.guardrail.name": "pii-filter",
            "gen_ai.guardrail.status": "FAILED",
            "gen_ai.guardrail.category": "PII",
        },
        inputs=["my card is 4111 1111 1111 1111"],
    )
    assert failed.kind == "guardrail_blocked" and failed.archetype == "data_exfiltration"
    assert failed.severity == "high" and (failed.excerpt or "").startswith("my card")
    assert guardrail(attributes={"gen_ai.guardrail.status": "PASSED"}) == []
    (denied,) = guardrail(
        attributes={
            "gen_ai.security.decision.type": "deny",
            "gen_ai.security.risk.category": "prompt_injection",
            "gen_ai.security.risk.score": 0.93,
            "gen_ai.guardian.name": "shield",
        }
    )
    assert denied.archetype == "prompt_injection" and denied.confidence == 0.93
    assert denied.owasp == ("LLM01:2025",)
    (errored,) = guardrail(attributes={"gen_ai.guardrail.status": "ERROR"})
    assert errored.kind == "guardrail_error" and errored.severity == "info"


def test_llm_guard_results_and_guardrail_span_outputs() -> None:
    (scanned,) = guardrail(
        attributes={
            "llm_guard.results_valid": '{"PromptInjection": false, "Toxicity": true}',
            "llm_guard.results_score": '{"PromptInjection": 0.97, "Toxicity": 0.1}',
        }
    )
    assert scanned.attributes["categories"] == ["PromptInjection"]
    assert scanned.confidence == 0.97
    (span,) = guardrail(
        operation="apply_guardrail",
        outputs=['{"validation_passed": false, "validator": "toxic_language"}'],
    )
    assert span.archetype == "toxicity_abuse"
    assert guardrail(operation="apply_guardrail", outputs=['{"validation_passed": true}']) == []
    assert guardrail(operation="chat", outputs=['{"validation_passed": false}']) == []


# --- items --------------------------------------------------------------------------------


def test_items_read_only_the_new_turn() -> None:
    record = {
        "operation": "chat",
        "system_id": "s",
        "system_instructions": [{"type": "text", "content": "Be kind."}],
        "input_messages": [
            {"role": "user", "parts": [{"type": "text", "content": "old question"}]},
            {"role": "assistant", "parts": [{"type": "text", "content": "old answer"}]},
            {"role": "user", "parts": [{"type": "text", "content": "new question"}]},
            {
                "role": "tool",
                "parts": [{"type": "tool_call_response", "id": "c1", "response": "doc text"}],
            },
        ],
        "output_messages": [
            {
                "role": "assistant",
                "parts": [
                    {"type": "text", "content": "answer"},
                    {"type": "tool_call", "id": "c2", "name": "lookup", "arguments": {"q": 1}},
                ],
            }
        ],
    }
    item = item_from_record(record)
    assert item.inputs == ["new question"] and item.context == ["doc text"]
    assert item.instructions == ["Be kind."] and item.outputs == ["answer"]
    assert item.tool_calls == [ToolCall("lookup", {"q": 1}, "c2")]


def test_scan_lines() -> None:
    plain = item_from_line("ignore this\n", number=1, system_id=None)
    assert plain.inputs == ["ignore this"] and plain.ref == 1
    line = '{"input": "hi", "output": "ok", "context": ["doc"], "tool_calls": '
    line += '[{"name": "t", "arguments": "{\\"a\\": 1}"}], "time": "2026-01-01T00:00:00"}'
    item = item_from_line(line, number=2, system_id="x")
    assert item.context == ["doc"] and item.tool_calls[0].arguments == {"a": 1}
    assert item.time == 1767225600.0
    with pytest.raises(InvalidInput) as caught:
        item_from_line('{"input": "hi", "colour": 1}', number=3, system_id=None)
    assert caught.value.problems[0].location == "line 3: colour"
    with pytest.raises(InvalidInput, match="line 4: not valid JSON"):
        item_from_line('{"input": ', number=4, system_id=None)
