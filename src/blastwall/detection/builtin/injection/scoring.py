"""Scoring a channel's text: the rules that fire on it (a match whose conditions hold), and
the score they add up to. Each family counts once, with the weight of its strongest rule plus
`FAMILY_BONUS` per other rule of the family that fired; the families combine as independent
evidence: score = 1 - prod(1 - w)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from blastwall.detection.builtin.injection.rules import RuleInfo
from blastwall.detection.patterns import Match, PatternSet

FAMILY_BONUS = 0.1
"""Added to a family's weight for each other rule of the family that fired."""
FAMILY_CAP = 0.97


@dataclass(slots=True)
class Hit:
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
class Verdict:
    score: float
    families: list[str]
    hits: list[Hit]


def verdict(hits: list[Hit]) -> Verdict:
    by_family: dict[str, list[float]] = {}
    for hit in hits:
        by_family.setdefault(hit.info.family, []).append(hit.info.weight)
    remaining = 1.0
    for weights in by_family.values():
        weight = min(FAMILY_CAP, max(weights) + FAMILY_BONUS * (len(weights) - 1))
        remaining *= 1.0 - weight
    families = sorted(by_family, key=lambda f: (-max(by_family[f]), f))
    return Verdict(1.0 - remaining, families, hits)


def encode(texts: Sequence[str]) -> tuple[str, bytes]:
    text = texts[0] if len(texts) == 1 else "\n".join(texts)
    try:
        return text, text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        text = text.encode("utf-8", "replace").decode("utf-8")
        return text, text.encode("utf-8")


def match_evidence(info: RuleInfo, data: bytes, match: Match) -> tuple[int, str] | None:
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


def rule_hits(
    rule_set: PatternSet,
    rules: Sequence[Sequence[RuleInfo]],
    channel: str,
    text: str,
    data: bytes,
    *,
    decoded: bool = False,
    skip: Iterable[str] = (),
) -> list[Hit]:
    """The rules that fire on a channel's text, each once (at its first match that counts)."""
    found: list[Hit] = []
    fired = set(skip)
    for match in rule_set.scan(data):
        for info in rules[match.rule]:
            if info.name in fired or channel not in info.channels:
                continue
            evidence = match_evidence(info, data, match)
            if evidence is None:
                continue
            fired.add(info.name)
            found.append(Hit(info, text, data, evidence[0], evidence[1], decoded))
    return found


_HOST = re.compile(r"https?://(?:[^/?#\s@]*@)?(\[[^\]]*\]|[^/?#\s:)\]\"'<>]+)", re.IGNORECASE)


def first_per_rule(hits: Iterable[Hit]) -> list[Hit]:
    firsts: dict[str, Hit] = {}
    for hit in hits:
        firsts.setdefault(hit.info.name, hit)
    return list(firsts.values())


def url_host(url_text: str) -> str:
    """The host of the first URL in the text, lower case, without user or port."""
    found = _HOST.search(url_text)
    return found.group(1).lower().rstrip(".") if found else ""


def domain_listed(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)
