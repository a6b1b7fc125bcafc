"""The injection detector: prompt injection and jailbreaks in the input, indirect injection
in retrieved documents and tool results, exfiltration channels in the output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from blastwall.detection.base import (
    Detector,
    DetectorConfig,
    Finding,
    Item,
    SystemContext,
    excerpt,
)
from blastwall.detection.builtin.injection.obfuscation import deobfuscate
from blastwall.detection.builtin.injection.rules import (
    INPUT_RULES,
    OUTPUT_RULE_SET,
    OUTPUT_RULES,
    RULE_SET,
)
from blastwall.detection.builtin.injection.scoring import (
    Hit,
    Verdict,
    domain_listed,
    encode,
    first_per_rule,
    match_evidence,
    rule_hits,
    url_host,
    verdict,
)

_OBFUSCATION = "obfuscation"
"""The family of the rules that find obfuscation, not an injection by themselves."""

_ATLAS_BY_FAMILY = {
    "jailbreak_persona": "AML.T0054",
    "system_prompt_extraction": "AML.T0056",
    "obfuscation": "AML.T0068",
    "exfiltration": "AML.T0086",
}


class InjectionDetector(Detector):
    """Prompt injection and jailbreaks on the input, indirect injection in retrieved documents
    and tool results, exfiltration channels in the output."""

    id: ClassVar[str] = "prompt_injection"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "Prompt injection and jailbreaks in inputs and retrieved content, "
        "exfiltration channels in outputs."
    )

    class Config(DetectorConfig):
        threshold: float = Field(
            0.5, ge=0.0, le=1.0, description="A score at or above this raises a finding."
        )
        indirect: bool = Field(
            True, description="Scan retrieved documents and tool results (indirect injection)."
        )
        output_urls: bool = Field(
            True, description="Look for exfiltration channels (images, links) in outputs."
        )
        allowed_url_domains: list[str] = Field(
            default_factory=list,
            description="Domains (and their subdomains) whose URLs in outputs are expected.",
        )

    def __init__(self, config: DetectorConfig, context: SystemContext) -> None:
        if not isinstance(config, InjectionDetector.Config):
            config = InjectionDetector.Config.model_validate(config.model_dump())
        super().__init__(config, context)
        self.settings: InjectionDetector.Config = config
        self._allowed = tuple(
            d.strip().lower().lstrip("*").strip(".")
            for d in config.allowed_url_domains
            if d.strip()
        )

    def detect(self, item: Item) -> list[Finding]:
        findings: list[Finding] = []
        if item.inputs:
            found = self._injection(item.inputs, "inputs")
            if found is not None:
                findings.append(found)
        if item.context and self.settings.indirect:
            found = self._injection(item.context, "context")
            if found is not None:
                findings.append(found)
        if item.outputs and self.settings.output_urls:
            found = self._exfiltration(item)
            if found is not None:
                findings.append(found)
        return findings

    def score(self, texts: Sequence[str], channel: str = "inputs") -> tuple[float, list[str]]:
        """The score of these texts of a channel and the rules that fired, whatever the
        threshold (for benchmarks and for choosing a threshold)."""
        text, data = encode(texts)
        if channel == "outputs":
            result = self._output_verdict(text, data, ())
        else:
            result = self._input_verdict(text, data, channel)
        if result is None:
            return 0.0, []
        return result.score, [h.info.name for h in result.hits]

    # -- inputs and context

    def _input_verdict(self, text: str, data: bytes, channel: str) -> Verdict | None:
        hits = rule_hits(RULE_SET, INPUT_RULES, channel, text, data)
        if not hits:
            return None
        decoders = frozenset().union(*(h.info.decode for h in hits))
        if decoders:
            plain = deobfuscate(text, decoders)
            if plain != text:
                plain_data = plain.encode("utf-8", "replace")
                fired = [h.info.name for h in hits]
                for hit in rule_hits(
                    RULE_SET, INPUT_RULES, channel, plain, plain_data, decoded=True, skip=fired
                ):
                    if hit.info.family != _OBFUSCATION:
                        hits.append(hit)
        return verdict(hits)

    def _injection(self, texts: Sequence[str], channel: str) -> Finding | None:
        text, data = encode(texts)
        result = self._input_verdict(text, data, channel)
        if result is None or result.score < self.settings.threshold:
            return None
        atlas = ["AML.T0051.001" if channel == "context" else "AML.T0051.000"]
        atlas += [_ATLAS_BY_FAMILY[f] for f in result.families if f in _ATLAS_BY_FAMILY]
        labels = ", ".join(f.replace("_", " ") for f in result.families)
        if channel == "context":
            kind = "indirect_prompt_injection"
            severity = "critical" if result.score >= 0.9 else "high"
            summary = (
                f"A retrieved document or tool result carries instructions aimed at the "
                f"model ({labels}), score {result.score:.2f}."
            )
        else:
            kind = "prompt_injection"
            severity = "high" if result.score >= 0.9 else "warning"
            summary = (
                f"The user's input reads as a prompt injection or jailbreak attempt "
                f"({labels}), score {result.score:.2f}."
            )
        return _finding(
            kind,
            "prompt_injection",
            severity,
            summary,
            result,
            owasp=("LLM01:2025",),
            atlas=tuple(atlas),
            channel=channel,
        )

    # -- outputs

    def _output_verdict(
        self, text: str, data: bytes, seen: Sequence[str], threshold: float = 0.0
    ) -> Verdict | None:
        """Links and images whose host is neither allowed nor named in `seen` (the item's
        other texts: a link the user or a document gave is not unexpected). `seen` is read
        only when the links would reach `threshold`."""
        if b"http" not in data.lower():
            return None
        candidates: list[tuple[str, Hit]] = []
        for match in OUTPUT_RULE_SET.scan(data):
            for info in OUTPUT_RULES[match.rule]:
                evidence = match_evidence(info, data, match)
                if evidence is None:
                    continue
                host = url_host(evidence[1])
                if host and not domain_listed(host, self._allowed):
                    candidates.append((host, Hit(info, text, data, *evidence)))
        if not candidates:
            return None
        if verdict(first_per_rule(h for _, h in candidates)).score < threshold:
            return None
        seen_text = "\n".join(seen).lower()
        hits = first_per_rule(h for host, h in candidates if host not in seen_text)
        return verdict(hits) if hits else None

    def _exfiltration(self, item: Item) -> Finding | None:
        text, data = encode(item.outputs)
        seen = [*item.inputs, *item.context, *item.instructions]
        result = self._output_verdict(text, data, seen, self.settings.threshold)
        if result is None or result.score < self.settings.threshold:
            return None
        rules = ", ".join(h.info.name.replace("_", " ") for h in result.hits)
        return _finding(
            "exfiltration_channel",
            "data_exfiltration",
            "critical" if result.score >= 0.9 else "high",
            f"The model's output holds a link or image that can carry data to an address "
            f"the system does not expect ({rules}), score {result.score:.2f}.",
            result,
            owasp=("LLM05:2025", "LLM02:2025"),
            atlas=("AML.T0077", "AML.T0057"),
            channel="outputs",
        )


def _finding(
    kind: str,
    archetype: str,
    severity: str,
    summary: str,
    result: Verdict,
    *,
    owasp: tuple[str, ...],
    atlas: tuple[str, ...],
    channel: str,
) -> Finding:
    top = max(result.hits, key=lambda h: (h.info.weight, not h.decoded))
    start = len(top.data[: top.offset].decode("utf-8", "replace"))
    attributes: dict[str, Any] = {
        "score": round(result.score, 3),
        "families": result.families,
        "rules": [h.info.name for h in result.hits],
        "channel": channel,
    }
    if any(h.decoded for h in result.hits):
        attributes["decoded"] = True
    return Finding(
        kind=kind,
        archetype=archetype,
        severity=severity,
        confidence=round(result.score, 3),
        summary=summary,
        excerpt=excerpt(top.text, start, start + len(top.evidence)),
        matched=top.evidence,
        owasp=owasp,
        atlas=atlas,
        attributes=attributes,
        key=kind,
    )
