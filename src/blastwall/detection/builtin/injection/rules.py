"""The rule pack (`injection_rules.yaml`), loaded and compiled once, at import, into the
Hyperscan databases of the input channels (`RULE_SET`) and of the output (`OUTPUT_RULE_SET`).
A rule's conditions (`before`, `after`, `unless`) are kept beside its pattern, for Python to
check around a match."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

import yaml

from blastwall.detection.builtin.injection.obfuscation import DECODERS
from blastwall.detection.patterns import PatternSet, Rule

WINDOW = 120
"""Bytes before and after a match that a rule's `before` and `after` conditions read."""

_CHANNELS = frozenset({"inputs", "context", "outputs"})
_DEFAULT_CHANNELS = frozenset({"inputs", "context"})
_MACRO = re.compile(r"\{\{(\w+)\}\}")
RULES_FILE = resources.files("blastwall.detection.builtin").joinpath("injection_rules.yaml")
"""The rule pack, beside the other built-in detectors."""


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule of the pack as the detector scores it: its pattern is in a `PatternSet`, its
    conditions are checked here, in Python, on the text around a match."""

    name: str
    family: str
    weight: float
    channels: frozenset[str]
    before: re.Pattern[str] | None = None
    after: re.Pattern[str] | None = None
    unless: re.Pattern[str] | None = None
    window: int = WINDOW
    needs: tuple[bytes, ...] = ()
    """Strings (lower case) one of which the text after the match must hold, checked before
    the dearer `after` regex."""
    decode: frozenset[str] = frozenset()
    """What to undo (see `deobfuscate`) when this rule fires, before scanning again."""


def _expand(text: str, macros: Mapping[str, str]) -> str:
    for _ in range(5):
        expanded = _MACRO.sub(lambda m: macros[m.group(1)], text)
        if expanded == text:
            return text
        text = expanded
    raise ValueError(f"injection rules: macros nest too deep in {text[:60]!r}")


def _python(pattern: str | None, macros: Mapping[str, str], wrap: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    return re.compile(wrap % _expand(pattern, macros), re.IGNORECASE | re.DOTALL)


def _load_rules() -> tuple[dict[str, str], tuple[tuple[Rule, RuleInfo], ...]]:
    pack = yaml.safe_load(RULES_FILE.read_text("utf-8"))
    families: dict[str, str] = dict(pack["families"])
    macros: dict[str, str] = {k: str(v).strip() for k, v in pack.get("macros", {}).items()}
    rules: list[tuple[Rule, RuleInfo]] = []
    scored: dict[str, tuple[str, float]] = {}
    for entry in pack["rules"]:
        name = entry["name"]
        if entry["family"] not in families:
            raise ValueError(f"injection rule {name}: unknown family {entry['family']!r}")
        if scored.setdefault(name, (entry["family"], entry["weight"])) != (
            entry["family"],
            entry["weight"],
        ):
            raise ValueError(f"injection rule {name}: its alternatives differ in family or weight")
        channels = frozenset(entry.get("channels", _DEFAULT_CHANNELS))
        if not channels or not channels <= _CHANNELS:
            raise ValueError(f"injection rule {name}: channels must be among {sorted(_CHANNELS)}")
        weight = float(entry["weight"])
        if not 0.0 < weight < 1.0:
            raise ValueError(f"injection rule {name}: weight must be between 0 and 1")
        info = RuleInfo(
            name,
            entry["family"],
            weight,
            channels,
            before=_python(entry.get("before"), macros, "(?:%s)\\Z"),
            after=_python(entry.get("after"), macros, "(?:%s)"),
            unless=_python(entry.get("unless"), macros, "%s"),
            window=int(entry.get("window", WINDOW)),
            needs=tuple(str(n).lower().encode() for n in entry.get("needs", ())),
            decode=frozenset(entry.get("decode", ())),
        )
        if not info.decode <= DECODERS:
            raise ValueError(f"injection rule {name}: decode must be among {sorted(DECODERS)}")
        every = bool(entry.get("every", False)) or info.before is not None or info.after is not None
        pattern = _expand(entry["pattern"], macros)
        rules.append((Rule(name, pattern, every, bool(entry.get("caseless", True))), info))
    return families, tuple(rules)


def _compile(
    pairs: Iterable[tuple[Rule, RuleInfo]],
) -> tuple[PatternSet, tuple[tuple[RuleInfo, ...], ...]]:
    """One pattern set for these rules, each distinct pattern compiled once (rules that share
    a pattern differ by their conditions), and the rules of each pattern."""
    merged: dict[tuple[str, bool], tuple[Rule, list[RuleInfo]]] = {}
    for rule, info in pairs:
        key = (rule.pattern, rule.caseless)
        if key in merged:
            first, infos = merged[key]
            infos.append(info)
            if rule.name in first.name.split("+"):
                continue
            merged[key] = (
                Rule(
                    f"{first.name}+{rule.name}",
                    first.pattern,
                    first.every or rule.every,
                    first.caseless,
                ),
                infos,
            )
        else:
            merged[key] = (rule, [info])
    return (
        PatternSet([rule for rule, _ in merged.values()]),
        tuple(tuple(infos) for _, infos in merged.values()),
    )


FAMILIES, _ALL_RULES = _load_rules()
RULES: tuple[RuleInfo, ...] = tuple(info for _, info in _ALL_RULES)
"""Every rule of the pack."""

RULE_SET, INPUT_RULES = _compile(
    (r, i) for r, i in _ALL_RULES if i.channels & {"inputs", "context"}
)
"""The patterns for inputs and context (`RULE_SET.scan_re(text)` runs them through `re`)."""
OUTPUT_RULE_SET, OUTPUT_RULES = _compile((r, i) for r, i in _ALL_RULES if "outputs" in i.channels)
"""The patterns for outputs: exfiltration channels."""
