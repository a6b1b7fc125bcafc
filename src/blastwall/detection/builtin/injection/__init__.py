"""Prompt injection, jailbreaks and exfiltration channels, from a rule pack.

The rules live in `injection_rules.yaml` beside this package, grouped in families
(instruction override, jailbreak persona, system prompt extraction, obfuscation, delimiter
injection, exfiltration). Their patterns are compiled once, at import, into two Hyperscan
databases: `RULE_SET` for what goes into the model (the user's input; retrieved documents and
tool results, the indirect channel) and `OUTPUT_RULE_SET` for what comes out of it (markdown
images and links that can carry data away).

A channel's texts are joined and scanned once. Only when a pattern matched does Python do
more: check the rule's conditions on the text around the match (`after`, `before`,
`unless`), undo obfuscation where an obfuscation rule fired (tag characters, invisible and
bidi characters, homoglyphs, base64 and hex blobs, leetspeak, ROT13) and scan the decoded
text once more, then score. Each family counts once, with the weight of its strongest rule
plus `FAMILY_BONUS` per other rule of the family that fired, and the families combine as
independent evidence: score = 1 - prod(1 - w). One weak cue stays below the threshold; one
unambiguous rule ("ignore all previous instructions") reaches it alone.
"""

from blastwall.detection.builtin.injection.detector import InjectionDetector
from blastwall.detection.builtin.injection.obfuscation import DECODERS, deobfuscate
from blastwall.detection.builtin.injection.rules import (
    FAMILIES,
    OUTPUT_RULE_SET,
    RULE_SET,
    RULES,
    WINDOW,
    RuleInfo,
)
from blastwall.detection.builtin.injection.scoring import FAMILY_BONUS, FAMILY_CAP

__all__ = [
    "DECODERS",
    "FAMILIES",
    "FAMILY_BONUS",
    "FAMILY_CAP",
    "OUTPUT_RULE_SET",
    "RULES",
    "RULE_SET",
    "WINDOW",
    "InjectionDetector",
    "RuleInfo",
    "deobfuscate",
]
