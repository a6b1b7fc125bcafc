"""Guardrail verdicts already in the telemetry become signals instead of being lost.

Read from the interaction's attributes and, for guardrail operations (`apply_guardrail`,
OpenInference GUARDRAIL spans), from the guardrail's output:

* `gen_ai.guardrail.*` attributes (`name`, `status` PASSED/FAILED/ERROR, `decision`,
  `verdict`, `action`, `category`, `score`);
* the proposed GenAI security attributes `gen_ai.security.decision.type` (allow, deny,
  modify, warn, audit), `gen_ai.security.decision.reason`, `gen_ai.security.risk.category`,
  `gen_ai.security.risk.severity`, `gen_ai.security.risk.score`, `gen_ai.guardian.name`;
* LLM Guard–style results: `results_valid` (scanner -> passed) with `results_score`
  (scanner -> risk score), under any attribute key ending in those names or in the output;
* guardrail outputs of the common shapes: `{"validation_passed": false}`,
  `{"passed": false}`, `{"is_valid": false}`, `{"flagged": true}`, `{"action": "blocked"}`.

A verdict that passed is not a finding; an errored guardrail is (severity info), since
whatever it should have caught went unchecked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blastwall.detection.base import Detector, DetectorConfig, Finding, Item, excerpt
from blastwall.telemetry.messages import FAIL, loads

__all__ = ["GuardrailDetector"]

_BLOCKED = frozenset(
    [
        *("fail", "failed", "failure", "block", "blocked", "deny", "denied", "reject"),
        *("rejected", "flag", "flagged", "violation", "violated", "unsafe", "modify"),
        *("modified", "redact", "redacted", "warn", "warning", "intervened"),
    ]
)
_ERROR = frozenset(["error", "errored"])
_VERDICT_KEYS = ("status", "decision", "verdict", "action", "result", "outcome")
# category words -> archetype, first match wins
_ARCHETYPES = (
    (("inject", "jailbreak", "prompt_attack", "promptattack"), "prompt_injection"),
    (
        ("pii", "secret", "sensitive", "leak", "privacy", "credential", "anonymi"),
        "data_exfiltration",
    ),
    (
        ("toxic", "hate", "harass", "violen", "sexual", "self_harm", "selfharm", "profan", "bias"),
        "toxicity_abuse",
    ),
    (("halluc", "factual", "grounded", "relevance"), "misinformation_cascade"),
    (("tool", "agent", "action", "permission"), "agentic_misalignment"),
)
_OWASP = {
    "prompt_injection": ("LLM01:2025",),
    "data_exfiltration": ("LLM02:2025",),
    "misinformation_cascade": ("LLM09:2025",),
    "agentic_misalignment": ("LLM06:2025",),
}
_ATLAS = {"prompt_injection": ("AML.T0051",), "data_exfiltration": ("AML.T0057",)}


def _archetype(words: str) -> str | None:
    text = words.lower().replace("-", "_").replace(" ", "_")
    for needles, archetype in _ARCHETYPES:
        if any(n in text for n in needles):
            return archetype
    return None


def _parsed(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        found = loads(value)
        return value if found is FAIL else found
    return value


class _Verdict:
    __slots__ = ("blocked", "categories", "errored", "guardrail", "reason", "score", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.guardrail: str | None = None
        self.blocked = False
        self.errored = False
        self.categories: list[str] = []
        self.score: float | None = None
        self.reason: str | None = None

    def word(self, value: Any) -> None:
        if isinstance(value, bool):
            return
        text = str(value).strip().lower()
        if text in _BLOCKED:
            self.blocked = True
        elif text in _ERROR:
            self.errored = True


def _score(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _llm_guard(valid: Any, scores: Any, verdict: _Verdict) -> None:
    valid, scores = _parsed(valid), _parsed(scores)
    if not isinstance(valid, Mapping):
        return
    for scanner, passed in valid.items():
        if passed is False:
            verdict.blocked = True
            verdict.categories.append(str(scanner))
            if isinstance(scores, Mapping):
                score = _score(scores.get(scanner))
                if score is not None:
                    verdict.score = max(verdict.score or 0.0, score)


def _from_attributes(attributes: Mapping[str, Any]) -> _Verdict | None:
    verdict = _Verdict("attributes")
    seen = False
    for key, value in attributes.items():
        if key.startswith("gen_ai.guardrail."):
            seen = True
            field = key[len("gen_ai.guardrail.") :]
            if field == "name":
                verdict.guardrail = str(value)
            elif field in _VERDICT_KEYS:
                verdict.word(value)
            elif field in ("category", "categories", "type"):
                verdict.categories.extend(map(str, value if isinstance(value, list) else [value]))
            elif field in ("score", "risk_score", "confidence"):
                verdict.score = _score(value)
            elif field in ("error.type", "error.message"):
                verdict.errored = True
            elif field in ("reason", "message"):
                verdict.reason = str(value)[:300]
        elif key.startswith(("gen_ai.security.", "gen_ai.guardian.")):
            seen = True
            if key == "gen_ai.security.decision.type":
                verdict.word(value)
            elif key == "gen_ai.security.decision.reason":
                verdict.reason = str(value)[:300]
            elif key == "gen_ai.security.risk.category":
                verdict.categories.extend(map(str, value if isinstance(value, list) else [value]))
            elif key == "gen_ai.security.risk.score":
                verdict.score = _score(value)
            elif key in ("gen_ai.guardian.name", "gen_ai.guardian.id"):
                verdict.guardrail = verdict.guardrail or str(value)
        elif key.endswith("results_valid"):
            seen = True
            prefix = key[: -len("results_valid")]
            _llm_guard(value, attributes.get(prefix + "results_score"), verdict)
    return verdict if seen else None


def _from_output(value: Any, verdict: _Verdict) -> bool:
    """Read a guardrail's output document; True when it looked like a verdict."""
    document = _parsed(value)
    if not isinstance(document, Mapping):
        return False
    seen = False
    for key in ("validation_passed", "passed", "is_valid", "valid"):
        if isinstance(document.get(key), bool):
            seen = True
            verdict.blocked = verdict.blocked or not document[key]
    if isinstance(document.get("flagged"), bool):
        seen = True
        verdict.blocked = verdict.blocked or document["flagged"]
    for key in _VERDICT_KEYS:
        if isinstance(document.get(key), str):
            seen = True
            verdict.word(document[key])
    if "results_valid" in document:
        seen = True
        _llm_guard(document["results_valid"], document.get("results_score"), verdict)
    for key in ("category", "categories", "validator", "scanner", "name"):
        value = document.get(key)
        if isinstance(value, str):
            verdict.categories.append(value)
        elif isinstance(value, list):
            verdict.categories.extend(str(v) for v in value)
    if isinstance(document.get("reason"), str):
        verdict.reason = document["reason"][:300]
    if verdict.score is None and "score" in document:
        verdict.score = _score(document["score"])
    return seen


def _first_text(item: Item) -> str | None:
    for texts in (item.inputs, item.context, item.outputs):
        if texts:
            return excerpt(texts[0], 0, len(texts[0]))
    return None


class GuardrailDetector(Detector):
    id = "guardrail"
    version = "1.0.0"
    description = "Guardrail verdicts in the telemetry (gen_ai.guardrail.*, GUARDRAIL spans)."
    Config = DetectorConfig

    def detect(self, item: Item) -> list[Finding]:
        verdict = _from_attributes(item.attributes) if item.attributes else None
        if item.operation == "apply_guardrail":
            verdict = verdict or _Verdict("guardrail span")
            for text in item.outputs:
                _from_output(text, verdict)
        if verdict is None or not (verdict.blocked or verdict.errored):
            return []
        name = verdict.guardrail or item.agent or "a guardrail"
        categories = sorted(set(verdict.categories))
        archetype = _archetype(" ".join([*categories, name]))
        if verdict.blocked:
            severity = (
                "high" if archetype in ("prompt_injection", "data_exfiltration") else "warning"
            )
            summary = f"{name} blocked or flagged an interaction" + (
                f" ({', '.join(categories)})" if categories else ""
            )
        else:
            severity = "info"
            summary = f"{name} failed to run: the interaction went unchecked"
        if verdict.reason:
            summary += f": {verdict.reason}"
        return [
            Finding(
                kind="guardrail_blocked" if verdict.blocked else "guardrail_error",
                archetype=archetype,
                severity=severity,
                confidence=verdict.score
                if verdict.score is not None and 0 <= verdict.score <= 1
                else 0.8,
                summary=summary + ".",
                excerpt=_first_text(item),
                matched=name,
                owasp=_OWASP.get(archetype or "", ()),
                atlas=_ATLAS.get(archetype or "", ()),
                attributes={
                    "guardrail": name,
                    "categories": categories,
                    "score": verdict.score,
                    "source": verdict.source,
                },
                key=f"{name}:{','.join(categories)}"[:150],
            )
        ]
