"""Field-level redaction of a status update for one audience.

Each redaction class the audience may not see (`Audience.hides`) is masked in every section:

* `personal_data`, `secrets`: the telemetry content policy's engine (`redact_text`): e-mail
  addresses, phone numbers, payment cards, IBANs, US SSNs (`personal_data`); API keys,
  tokens, private keys (`secrets`).
* `prompts`, `outputs`, `system_instructions`: quoted text, the way interactions are cited
  in an update: code blocks, inline code, and text in double quotes become
  ``[QUOTED CONTENT]``.
* `internal_names`: the inventory's system, tool, data source and prompt ids (`[INTERNAL]`).
* `model_internals`: model names, ids, providers and versions (`[MODEL]`).

`Redactor.redact` answers the text as the audience may see it and the classes it removed, so
that publishing can refuse an update that needs redacting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from blastwall.comms.audiences import RedactionClass
from blastwall.telemetry.redact import redact_text

__all__ = ["Names", "Redactor"]

_QUOTED = re.compile(
    r"```.{0,20000}?```|`[^`\n]{1,2000}`|\"[^\"\n]{1,2000}\"|“[^”\n]{1,2000}”", re.S
)
_PERSONAL = ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[SSN]")
_SECRETS = ("[SECRET]", "[PRIVATE KEY]")
_CONTENT = frozenset(
    {RedactionClass.prompts, RedactionClass.outputs, RedactionClass.system_instructions}
)


@dataclass(frozen=True)
class Names:
    """Names an update may mention that some audiences may not see, from the inventory."""

    internal: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


def _pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    kept = sorted({n for n in names if len(n) >= 3}, key=len, reverse=True)
    if not kept:
        return None
    alternatives = "|".join(re.escape(n) for n in kept)
    return re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w-])", re.I)


@dataclass
class Redactor:
    """Redacts text for an audience that may not see `hides`."""

    hides: frozenset[RedactionClass]
    names: Names = Names()
    _internal: re.Pattern[str] | None = field(init=False, default=None)
    _models: re.Pattern[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._internal = _pattern(self.names.internal)
        self._models = _pattern(self.names.models)

    def redact(self, text: str) -> tuple[str, set[RedactionClass]]:
        """The text as the audience may see it, and the classes that were removed."""
        hit: set[RedactionClass] = set()
        if self.hides & _CONTENT:
            text, count = _QUOTED.subn("[QUOTED CONTENT]", text)
            if count:
                hit |= self.hides & _CONTENT
        if self.hides & {RedactionClass.personal_data, RedactionClass.secrets}:
            masked = redact_text(text)
            if masked != text:
                personal = any(m in masked and m not in text for m in _PERSONAL)
                secret = any(m in masked and m not in text for m in _SECRETS)
                if personal and RedactionClass.personal_data in self.hides:
                    hit.add(RedactionClass.personal_data)
                if secret and RedactionClass.secrets in self.hides:
                    hit.add(RedactionClass.secrets)
                text = masked
        if self._models is not None and RedactionClass.model_internals in self.hides:
            text, count = self._models.subn("[MODEL]", text)
            if count:
                hit.add(RedactionClass.model_internals)
        if self._internal is not None and RedactionClass.internal_names in self.hides:
            text, count = self._internal.subn("[INTERNAL]", text)
            if count:
                hit.add(RedactionClass.internal_names)
        return text, hit
