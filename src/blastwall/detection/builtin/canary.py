"""Canary tokens: a token issued for a system (`blastwall canary issue`) is embedded in its
system prompt; any output or tool-call argument that carries it means the prompt leaked or
is being exfiltrated. Only the tokens' SHA-256 is known here."""

from __future__ import annotations

import hashlib
import re

from blastwall.detection.base import Detector, Finding, Item, excerpt
from blastwall.telemetry.messages import as_text

__all__ = ["PREFIX", "TOKEN", "CanaryDetector", "token_hash"]

PREFIX = "bwc_"
TOKEN = re.compile(r"bwc_[0-9a-f]{24}", re.IGNORECASE)  # found as bwc_ or BWC_


def token_hash(token: str) -> str:
    return hashlib.sha256(token.lower().encode()).hexdigest()


class CanaryDetector(Detector):
    id = "canary"
    version = "1.0.0"
    description = "A canary token issued for a system prompt appears in an output or tool call."

    def detect(self, item: Item) -> list[Finding]:
        canaries = self.context.canaries
        if not canaries:
            return []
        channels: list[tuple[str, str]] = [("output", text) for text in item.outputs]
        channels.extend(
            (f"tool call {call.name}", as_text(call.arguments))
            for call in item.tool_calls
            if call.arguments is not None
        )
        findings: list[Finding] = []
        seen: set[str] = set()
        for where, text in channels:
            if PREFIX not in text and "BWC_" not in text:
                continue
            for match in TOKEN.finditer(text):
                digest = token_hash(match.group())
                issued_for = canaries.get(digest)
                if issued_for is None or digest in seen:
                    continue
                seen.add(digest)
                masked = text[: match.start()] + "[CANARY]" + text[match.end() :]
                findings.append(
                    Finding(
                        kind="canary_token_leak",
                        archetype="data_exfiltration",
                        severity="critical",
                        confidence=1.0,
                        summary=f"A canary token issued for {issued_for} appeared in {where}: "
                        "the system prompt leaked or is being exfiltrated.",
                        excerpt=excerpt(masked, match.start(), match.start() + 8),
                        owasp=("LLM07:2025", "LLM02:2025"),
                        atlas=("AML.T0056", "AML.T0057"),
                        attributes={
                            "issued_for": issued_for,
                            "where": where,
                            "token_prefix": match.group()[:8].lower(),
                        },
                        key=digest[:16],
                    )
                )
        return findings
