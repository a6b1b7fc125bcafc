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

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar

import yaml
from pydantic import Field

from blastwall.detection.base import (
    Detector,
    DetectorConfig,
    Finding,
    Item,
    SystemContext,
    excerpt,
)
from blastwall.detection.patterns import Match, PatternSet, Rule

__all__ = [
    "FAMILIES",
    "OUTPUT_RULE_SET",
    "RULES",
    "RULE_SET",
    "InjectionDetector",
    "RuleInfo",
    "deobfuscate",
]

FAMILY_BONUS = 0.1
"""Added to a family's weight for each other rule of the family that fired."""
FAMILY_CAP = 0.97
WINDOW = 120
"""Bytes before and after a match that a rule's `before` and `after` conditions read."""

DECODERS = frozenset({"tags", "invisible", "homoglyphs", "blobs", "leet", "rot13"})
"""What `deobfuscate` can undo; an obfuscation rule's `decode` names those its match calls for."""

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

RULE_SET, _INPUT_RULES = _compile(
    (r, i) for r, i in _ALL_RULES if i.channels & {"inputs", "context"}
)
"""The patterns for inputs and context (`RULE_SET.scan_re(text)` runs them through `re`)."""
OUTPUT_RULE_SET, _OUTPUT_RULES = _compile((r, i) for r, i in _ALL_RULES if "outputs" in i.channels)
"""The patterns for outputs: exfiltration channels."""


# ---------------------------------------------------------------------------- deobfuscation

_HOMOGLYPHS = dict(
    zip(
        "аеорсухіјѕԁһԛԝкмтнвАВЕКМНОРСТХУІЈЅαβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
        "aeopcyxijsdhqwkmthbABEKMHOPCTXYIJSabeiknoptuxABEZHIKMNOPTYX",
        strict=True,
    )
)
_HOMOGLYPH_TABLE = {ord(k): ord(v) for k, v in _HOMOGLYPHS.items()}
_INVISIBLE_TABLE: dict[int, None] = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u180e"
        "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    )
)
_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
_RIGHT_TO_LEFT = re.compile("\u202e([^\u202a-\u202e\u2066-\u2069\n]*)")
_BLOB = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}|(?:\\x[0-9a-fA-F]{2}){8,}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_LEET = str.maketrans("0134578@$", "oieastbas")
_LEET_WORD = re.compile(r"[A-Za-z]*[0-9@$][A-Za-z0-9@$]*")
_ROT13 = re.compile(r"\brot[\s-]?13\b", re.IGNORECASE)
_OBFUSCATION = "obfuscation"


def _printable(data: bytes) -> str | None:
    """The bytes as text when they read as text (a decoded blob worth scanning), else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    # "\n" and "\t" are not printable: counted on their own
    readable = len(text) if text.isprintable() else sum(map(str.isprintable, text))
    readable += text.count("\n") + text.count("\t")
    letters = sum(map(str.isalpha, text)) + text.count(" ")
    if readable < 0.95 * len(text) or letters < 0.6 * len(text):
        return None
    return text


def _decode_blob(match: re.Match[str]) -> str:
    blob = match.group(0)
    if blob.startswith("\\x"):
        data: bytes | None = bytes.fromhex(blob.replace("\\x", ""))
    elif _HEX.fullmatch(blob):
        data = bytes.fromhex(blob)
    else:
        try:
            data = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            data = None
    text = _printable(data) if data else None
    return f" {text} " if text else blob


def _unleet(match: re.Match[str]) -> str:
    word = match.group(0)
    return word.translate(_LEET) if any(c.isalpha() for c in word) else word


def deobfuscate(text: str, decoders: Collection[str] = DECODERS) -> str:
    """The text with its obfuscation undone, for a second scan, by these decoders: `tags`
    reads Unicode tag characters as the ASCII they hide; `invisible` reads the text after a
    right-to-left override in the order it is shown and drops invisible and bidi characters;
    `homoglyphs` reads Cyrillic and Greek look-alikes as Latin letters; `blobs` decodes
    base64 and hex blobs that decode to text; `leet` reads digits inside words as letters;
    `rot13` adds the text's ROT13 reading where it speaks of ROT13."""
    rot13 = "rot13" in decoders and _ROT13.search(text) is not None
    if "tags" in decoders:
        text = _TAG_RUN.sub(
            lambda m: (
                " "
                + "".join(chr(ord(c) - 0xE0000) for c in m.group(0) if 0xE0020 <= ord(c) < 0xE007F)
                + " "
            ),
            text,
        )
    if "invisible" in decoders:
        text = _RIGHT_TO_LEFT.sub(lambda m: m.group(1)[::-1], text).translate(_INVISIBLE_TABLE)
    if "homoglyphs" in decoders:
        text = text.translate(_HOMOGLYPH_TABLE)
    if "blobs" in decoders:
        text = _BLOB.sub(_decode_blob, text)
    if "leet" in decoders:
        text = _LEET_WORD.sub(_unleet, text)
    if rot13:
        text += "\n" + codecs.encode(text, "rot13")
    return text


# ---------------------------------------------------------------------------- scoring


@dataclass(slots=True)
class _Hit:
    info: RuleInfo
    text: str
    """The text the match is in: the channel's text, or its deobfuscated form."""
    data: bytes
    """The same, as scanned."""
    offset: int
    """Where the evidence (the match and what its conditions read) starts, in bytes."""
    evidence: str
    decoded: bool = False


@dataclass(slots=True)
class _Verdict:
    score: float
    families: list[str]
    hits: list[_Hit]


def _score(hits: list[_Hit]) -> _Verdict:
    by_family: dict[str, list[float]] = {}
    for hit in hits:
        by_family.setdefault(hit.info.family, []).append(hit.info.weight)
    remaining = 1.0
    for weights in by_family.values():
        weight = min(FAMILY_CAP, max(weights) + FAMILY_BONUS * (len(weights) - 1))
        remaining *= 1.0 - weight
    families = sorted(by_family, key=lambda f: (-max(by_family[f]), f))
    return _Verdict(1.0 - remaining, families, hits)


def _encode(texts: Sequence[str]) -> tuple[str, bytes]:
    text = texts[0] if len(texts) == 1 else "\n".join(texts)
    try:
        return text, text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        text = text.encode("utf-8", "replace").decode("utf-8")
        return text, text.encode("utf-8")


def _evidence(info: RuleInfo, data: bytes, match: Match) -> tuple[int, str] | None:
    """The byte offset and text of what makes the match count, or None where the rule's
    conditions do not hold around it."""
    start, evidence = match.start, match.text(data)
    if info.before is not None:
        window = data[max(0, match.start - info.window) : match.start].decode("utf-8", "ignore")
        found = info.before.search(window)
        if found is None:
            return None
        start -= len(found.group(0).encode("utf-8"))
        evidence = found.group(0) + evidence
    if info.after is not None:
        raw = data[match.end : match.end + info.window]
        if info.needs:
            lowered = raw.lower()
            if not any(n in lowered for n in info.needs):
                return None
        window = raw.decode("utf-8", "ignore")
        found = info.after.match(window)
        if found is None:
            return None
        evidence += found.group(0)
    if info.unless is not None and info.unless.search(evidence):
        return None
    return start, evidence


def _hits(
    rule_set: PatternSet,
    rules: Sequence[Sequence[RuleInfo]],
    channel: str,
    text: str,
    data: bytes,
    *,
    decoded: bool = False,
    skip: Iterable[str] = (),
) -> list[_Hit]:
    """The rules that fire on a channel's text, each once (at its first match that counts)."""
    found: list[_Hit] = []
    fired = set(skip)
    for match in rule_set.scan(data):
        for info in rules[match.rule]:
            if info.name in fired or channel not in info.channels:
                continue
            evidence = _evidence(info, data, match)
            if evidence is None:
                continue
            fired.add(info.name)
            found.append(_Hit(info, text, data, evidence[0], evidence[1], decoded))
    return found


_HOST = re.compile(r"https?://(?:[^/?#\s@]*@)?(\[[^\]]*\]|[^/?#\s:)\]\"'<>]+)", re.IGNORECASE)


def _first_per_rule(hits: Iterable[_Hit]) -> list[_Hit]:
    firsts: dict[str, _Hit] = {}
    for hit in hits:
        firsts.setdefault(hit.info.name, hit)
    return list(firsts.values())


def _host(url_text: str) -> str:
    """The host of the first URL in the text, lower case, without user or port."""
    found = _HOST.search(url_text)
    return found.group(1).lower().rstrip(".") if found else ""


def _domain_listed(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


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
        text, data = _encode(texts)
        if channel == "outputs":
            result = self._output_verdict(text, data, ())
        else:
            result = self._input_verdict(text, data, channel)
        if result is None:
            return 0.0, []
        return result.score, [h.info.name for h in result.hits]

    # -- inputs and context

    def _input_verdict(self, text: str, data: bytes, channel: str) -> _Verdict | None:
        hits = _hits(RULE_SET, _INPUT_RULES, channel, text, data)
        if not hits:
            return None
        decoders = frozenset().union(*(h.info.decode for h in hits))
        if decoders:
            plain = deobfuscate(text, decoders)
            if plain != text:
                plain_data = plain.encode("utf-8", "replace")
                fired = [h.info.name for h in hits]
                for hit in _hits(
                    RULE_SET, _INPUT_RULES, channel, plain, plain_data, decoded=True, skip=fired
                ):
                    if hit.info.family != _OBFUSCATION:
                        hits.append(hit)
        return _score(hits)

    def _injection(self, texts: Sequence[str], channel: str) -> Finding | None:
        text, data = _encode(texts)
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
    ) -> _Verdict | None:
        """Links and images whose host is neither allowed nor named in `seen` (the item's
        other texts: a link the user or a document gave is not unexpected). `seen` is read
        only when the links would reach `threshold`."""
        if b"http" not in data.lower():
            return None
        candidates: list[tuple[str, _Hit]] = []
        for match in OUTPUT_RULE_SET.scan(data):
            for info in _OUTPUT_RULES[match.rule]:
                evidence = _evidence(info, data, match)
                if evidence is None:
                    continue
                host = _host(evidence[1])
                if host and not _domain_listed(host, self._allowed):
                    candidates.append((host, _Hit(info, text, data, *evidence)))
        if not candidates:
            return None
        if _score(_first_per_rule(h for _, h in candidates)).score < threshold:
            return None
        seen_text = "\n".join(seen).lower()
        hits = _first_per_rule(h for host, h in candidates if host not in seen_text)
        return _score(hits) if hits else None

    def _exfiltration(self, item: Item) -> Finding | None:
        text, data = _encode(item.outputs)
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
    result: _Verdict,
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
