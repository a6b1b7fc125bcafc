"""System-prompt leakage without a canary: the registered prompt's own text in outputs.

Where the inventory holds a system prompt's text (`components.prompts[*].content`, kept only
under the `full` and `redacted` content policies; with `hashes` there is nothing to compare),
`PromptLeakDetector` compares each interaction's outputs with it by word shingles: both texts
are lower-cased and cut into words (punctuation and spacing dropped), every run of
`shingle_words` consecutive words is hashed, and

    overlap = shared shingles / min(prompt shingles, output shingles)

An output is a leak when the overlap reaches `threshold` and at least `min_shingles` shingles
are shared, so that a short answer that happens to share a common phrase is not one. The
smaller side is the measure: an answer that is an excerpt of the prompt, and an answer that
quotes the whole prompt amid other text, both score high.

Cutting every output into shingles costs tens of microseconds, so a Hyperscan pass comes
first: three-word phrases of each prompt, one every few words, as written (any whitespace
for whitespace, the set caseless). A verbatim leak long enough to be reported holds at
least two of them, and only outputs that hold two are compared in full. What that costs in
recall: a short leak whose punctuation was changed can pass unseen, and prompts over about
2,000 words are sampled (one phrase is then enough, and a short leak can pass unseen). A
prompt written without spaces between words (Chinese, Japanese, Thai) gives no phrases; its
outputs are all compared in full, at that cost.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from blastwall.detection.base import Detector, DetectorConfig, Finding, Item, SystemContext
from blastwall.detection.patterns import PatternSet, Rule

__all__ = ["PromptLeakConfig", "PromptLeakDetector"]

_WORD = re.compile(r"[^\W_]+")
"""A word: letters and digits of any script; punctuation, spacing and "_" separate words."""
_PHRASE_WORDS = 3
_GAP = 3
_MAX_PHRASES = 512
"""Phrases per detector: enough for every fourth word of a 2,000-word prompt."""
_EXCERPT_CHARS = 120


class PromptLeakConfig(DetectorConfig):
    shingle_words: int = Field(default=5, ge=2, le=20, description="Words per shingle.")
    threshold: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Shared shingles over the shingles of the shorter text, from which an "
        "output counts as a leak.",
    )
    min_shingles: int = Field(
        default=8, ge=1, description="Shared shingles an output needs, whatever the overlap."
    )


@dataclass(frozen=True, slots=True)
class _Prompt:
    id: str
    version: str
    shingles: frozenset[int]
    needed: int
    """Phrases of the prompt an output must contain to be compared in full; 0: always."""


class PromptLeakDetector(Detector):
    """The registered system prompt's text repeated in outputs."""

    id: ClassVar[str] = "system_prompt_leak"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "System prompt leakage: outputs that repeat the registered system prompt's text, by "
        "word-shingle overlap (no canary needed)."
    )
    Config: ClassVar[type[DetectorConfig]] = PromptLeakConfig

    def __init__(self, config: DetectorConfig, context: SystemContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, PromptLeakConfig)
        self.settings = config
        self._prompts: list[_Prompt] = []
        phrases: dict[str, set[int]] = {}  # phrase pattern -> the prompts it comes from
        registered = _registered(context)
        budget = _MAX_PHRASES // max(1, len(registered))
        shortest = config.min_shingles + config.shingle_words - 1  # words of a reportable leak
        for prompt_id, prompt_version, content in registered:
            shingles = frozenset(_shingles(_WORD.findall(content.lower()), config))
            if len(shingles) < config.min_shingles:
                continue  # too short to ever be reported
            spans = [match.span() for match in _WORD.finditer(content)]
            # Phrases at least `stride` words apart: a leak of `shortest` words holds two.
            stride = max(1, min(4, (shortest - _PHRASE_WORDS + 1) // 2))
            needed = 2 if (shortest - _PHRASE_WORDS + 1) // stride >= 2 else 1
            if len(spans) > budget * stride:
                stride, needed = math.ceil(len(spans) / budget), 1
            chosen = [_literal(phrase) for phrase in _phrases(content, spans, stride)]
            if not chosen or sum(char.isspace() for char in content) * 2 < len(spans):
                needed, chosen = 0, []  # no spaces between words: compare every output
            elif len(chosen) * stride * 2 < len(spans):
                needed = 1  # few phrases (much punctuation): one is enough
            for phrase in chosen:
                phrases.setdefault(phrase, set()).add(len(self._prompts))
            self._prompts.append(_Prompt(prompt_id, prompt_version, shingles, needed))
        self._owners = [tuple(owners) for owners in phrases.values()]
        self._patterns = (
            PatternSet([Rule(str(n), phrase) for n, phrase in enumerate(phrases)])
            if phrases
            else None
        )
        self._always = [index for index, p in enumerate(self._prompts) if p.needed == 0]

    def detect(self, item: Item) -> list[Finding]:
        if not self._prompts or not item.outputs:
            return []
        text = "\n".join(item.outputs)
        candidates = self._candidates(text)
        if not candidates:
            return []
        lowered = text.lower()
        spans = [match.span() for match in _WORD.finditer(lowered)]
        hashes = list(_shingles([lowered[a:b] for a, b in spans], self.settings))
        seen = set(hashes)
        source = text if len(lowered) == len(text) else lowered
        findings = []
        for index in candidates:
            prompt = self._prompts[index]
            shared = len(seen & prompt.shingles)
            if shared < self.settings.min_shingles:
                continue
            overlap = shared / min(len(prompt.shingles), len(seen))
            if overlap < self.settings.threshold:
                continue
            first = next(i for i, value in enumerate(hashes) if value in prompt.shingles)
            findings.append(self._finding(prompt, overlap, shared, source, spans[first][0]))
        return findings

    def _candidates(self, text: str) -> list[int]:
        """The prompts the output may repeat: those enough of whose phrases it contains."""
        if self._patterns is None:
            return self._always
        hits: dict[int, int] = {}
        for match in self._patterns.scan(text.encode("utf-8", "replace")):
            for index in self._owners[match.rule]:
                hits[index] = hits.get(index, 0) + 1
        chosen = [i for i, count in hits.items() if count >= self._prompts[i].needed]
        return sorted(set(chosen) | set(self._always)) if self._always else chosen

    def _finding(
        self, prompt: _Prompt, overlap: float, shared: int, text: str, start: int
    ) -> Finding:
        piece = " ".join(text[start : start + 4 * _EXCERPT_CHARS].split())
        if len(piece) > _EXCERPT_CHARS:
            piece = piece[: _EXCERPT_CHARS - 1] + "…"
        words = self.settings.shingle_words
        return Finding(
            kind="system_prompt_leak",
            archetype="data_exfiltration",
            severity="critical" if overlap >= 0.9 else "high",
            confidence=round(min(0.99, 0.5 + overlap / 2), 3),
            summary=f"An output repeats system prompt '{prompt.id}' (version {prompt.version}): "
            f"{shared} {words}-word shingles in common, {overlap:.0%} overlap",
            excerpt=piece,
            matched=prompt.id,  # allowlisting a prompt's id drops its findings (a public prompt)
            owasp=("LLM07:2025",),
            atlas=("AML.T0056", "AML.T0057"),
            attributes={
                "prompt_id": prompt.id,
                "prompt_version": prompt.version,
                "overlap": round(overlap, 3),
                "shared_shingles": shared,
            },
            key=prompt.id,
        )


def _registered(context: SystemContext) -> list[tuple[str, str, str]]:
    """(id, version, text) of the system's prompts whose text the inventory holds and its
    content policy lets Blastwall use."""
    spec = context.spec
    if spec is None or spec.telemetry.content_policy == "hashes":
        return []
    return [(p.id, p.version, p.content) for p in spec.components.prompts if p.content]


def _shingles(words: list[str], config: PromptLeakConfig) -> Iterator[int]:
    """The hash of every run of `shingle_words` consecutive words, in order."""
    size = config.shingle_words
    return map(hash, zip(*(words[offset:] for offset in range(size)), strict=False))


def _phrases(text: str, spans: list[tuple[int, int]], stride: int) -> Iterator[str]:
    """Three-word phrases of the text as written, with what separates their words (at most
    `_GAP` characters: a space, ", ", ": "), at least `stride` words apart."""
    next_at = 0
    for index in range(len(spans) - _PHRASE_WORDS + 1):
        last = index + _PHRASE_WORDS - 1
        if index >= next_at and all(
            0 < spans[i + 1][0] - spans[i][1] <= _GAP for i in range(index, last)
        ):
            yield text[spans[index][0] : spans[last][1]]
            next_at = index + stride


def _literal(phrase: str) -> str:
    """The phrase as a Hyperscan pattern (the set is caseless): ASCII letters and digits as
    they are, any ASCII whitespace for whitespace, other characters by code point, letters of
    other scripts in upper and lower case both."""
    out = []
    for char in phrase:
        if char in " \t\n\r\f\v":
            out.append(r"\s")
        elif char.isascii():
            out.append(char.lower() if char.isalnum() else f"\\x{{{ord(char):x}}}")
        else:
            cases = sorted(v for v in {char, char.upper(), char.lower()} if len(v) == 1)
            out.append("[" + "".join(f"\\x{{{ord(v):x}}}" for v in cases) + "]")
    return "".join(out)
