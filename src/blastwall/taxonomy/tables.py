"""The taxonomy tables: MITRE ATLAS (the pinned `data/ATLAS.yaml`), the OWASP Top 10 for LLM
Applications (2025 and 2026 editions) and for Agentic Applications, NIST AI 600-1's risks and this
product's archetypes (`data/frameworks.yaml`), with the mapping between them.

Read once, on first use (about a tenth of a second with libyaml). Every taxonomy id that a
detector answers is checked against these tables before it is stored.

The ATLAS loader tolerates the file's known quirks: `{id, use}` objects inside a mitigation's
`ml-lifecycle` list (AML.M0018, AML.M0034) are read as the techniques they apply to, and the
ATT&CK reference is read under both spellings of its key (`ATT&CK-reference`,
`attack-reference`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from blastwall.errors import InvalidInput, NotFound, UnknownKind

__all__ = ["FRAMEWORKS", "Entry", "Taxonomy", "UnknownKind", "taxonomy"]

FRAMEWORKS = (
    "atlas",
    "owasp-llm-2025",
    "owasp-llm-2026",
    "owasp-agentic",
    "nist-ai-600-1",
    "archetype",
)
"""The frameworks, as `Entry.framework` names them."""
_ATLAS_URL = "https://atlas.mitre.org/{kind}/{id}"
_ATLAS_KINDS = {"tactic": "tactics", "technique": "techniques", "mitigation": "mitigations"}
_OWASP_WITHOUT_EDITION = re.compile(r"LLM\d{2}")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a framework: an ATLAS tactic, technique, mitigation or case study, an
    OWASP code, a NIST risk or an archetype."""

    id: str
    framework: str
    kind: str
    name: str
    description: str = ""
    url: str | None = None
    parent: str | None = None
    """The technique a sub-technique belongs to."""
    related: tuple[str, ...] = ()
    """Tactics of a technique, techniques of a mitigation or case study, the entries an
    archetype maps to."""
    attack: str | None = None
    """The ATT&CK id an ATLAS entry refers to."""


@dataclass
class Taxonomy:
    entries: dict[str, Entry]
    atlas_version: str
    names: dict[str, str] = field(default_factory=dict)
    """Framework to its full name."""
    _mapped: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.entries.values():
            if entry.framework == "archetype":
                for other in entry.related:
                    self._mapped.setdefault(other, set()).add(entry.id)
                    self._mapped.setdefault(entry.id, set()).add(other)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self.entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def get(self, entry_id: str) -> Entry:
        """The entry of an id; NotFound says what ids look like, or which edition to name."""
        entry_id = entry_id.strip()
        found = self.entries.get(entry_id) or self.entries.get(entry_id.upper())
        if found is not None:
            return found
        if _OWASP_WITHOUT_EDITION.fullmatch(entry_id.upper()):
            raise NotFound(
                f"'{entry_id}' needs its edition: an OWASP LLM code means different risks in "
                f"different editions. Write {entry_id.upper()}:2025 or {entry_id.upper()}:2026."
            )
        raise NotFound(
            f"No taxonomy entry '{entry_id}'. Ids look like AML.T0051 (ATLAS), LLM01:2025 "
            "(OWASP LLM), ASI01 (OWASP agentic), NIST-AI-600-1:2.2 or an archetype such as "
            "prompt_injection; `blastwall taxonomy list` shows them."
        )

    def unknown(self, ids: Iterable[str]) -> list[str]:
        """The ids that are in no table."""
        return [i for i in ids if i not in self.entries]

    def check(self, ids: Iterable[str], *, where: str) -> None:
        """Raise InvalidInput naming each id that is in no table."""
        missing = self.unknown(ids)
        if missing:
            raise InvalidInput(
                f"{where}: unknown taxonomy id(s) {', '.join(missing)}; "
                "`blastwall taxonomy list` shows the known ones"
            )

    def archetypes(self, entry_id: str) -> list[Entry]:
        """The archetypes that map to an id (or to the technique a sub-technique is of)."""
        entry = self.entries.get(entry_id)
        if entry is None or entry.framework == "archetype":
            return []
        ids = self._mapped.get(entry_id, set()) | self._mapped.get(entry.parent or "", set())
        return sorted((self.entries[i] for i in ids), key=_order)

    def mapped(self, entry_id: str) -> list[Entry]:
        """The entries of the frameworks an id maps to: through its archetypes, or for an
        archetype the entries it names."""
        entry = self.entries.get(entry_id)
        if entry is None:
            return []
        if entry.framework == "archetype":
            ids = set(entry.related)
        else:
            ids = {i for a in self.archetypes(entry_id) for i in a.related}
        ids.discard(entry_id)
        ids.discard(entry.parent or "")
        return sorted((self.entries[i] for i in ids), key=_order)

    def children(self, entry_id: str) -> list[Entry]:
        return sorted((e for e in self if e.parent == entry_id), key=_order)

    def of(self, framework: str | None = None, kind: str | None = None) -> list[Entry]:
        """The entries of a framework (None: all), in order; with `kind`, only those of that
        kind, and `UnknownKind` when it has none."""
        entries = sorted(
            (e for e in self if framework is None or e.framework == framework), key=_order
        )
        if kind is None:
            return entries
        kinds = sorted({e.kind for e in entries})
        if kind not in kinds:
            raise UnknownKind(kind, kinds)
        return [e for e in entries if e.kind == kind]


def _order(entry: Entry) -> tuple[int, str]:
    return FRAMEWORKS.index(entry.framework), entry.id


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value else ""


def _attack(raw: Mapping[str, Any]) -> str | None:
    reference = raw.get("ATT&CK-reference") or raw.get("attack-reference")
    return str(reference["id"]) if isinstance(reference, Mapping) and "id" in reference else None


def _atlas(document: Mapping[str, Any]) -> Iterator[Entry]:
    for matrix in document.get("matrices") or []:
        for raw in matrix.get("tactics") or []:
            yield _atlas_entry(raw, "tactic")
        for raw in matrix.get("techniques") or []:
            parent = raw.get("subtechnique-of")
            kind = "sub-technique" if parent else "technique"
            yield _atlas_entry(raw, kind, parent=parent, related=raw.get("tactics") or ())
        for raw in matrix.get("mitigations") or []:
            techniques = [t["id"] for t in raw.get("techniques") or [] if isinstance(t, Mapping)]
            # quirk: {id, use} objects inside the ml-lifecycle list name techniques too
            techniques += [
                t["id"]
                for t in raw.get("ml-lifecycle") or []
                if isinstance(t, Mapping) and "id" in t
            ]
            yield _atlas_entry(raw, "mitigation", related=dict.fromkeys(techniques))
    for raw in document.get("case-studies") or []:
        steps = [s.get("technique") for s in raw.get("procedure") or [] if isinstance(s, Mapping)]
        yield Entry(
            id=str(raw["id"]),
            framework="atlas",
            kind="case-study",
            name=_text(raw.get("name")),
            description=_text(raw.get("summary")),
            url=f"https://atlas.mitre.org/studies/{raw['id']}",
            related=tuple(dict.fromkeys(str(s) for s in steps if s)),
        )


def _atlas_entry(
    raw: Mapping[str, Any], kind: str, *, parent: str | None = None, related: Iterable[Any] = ()
) -> Entry:
    entry_id = str(raw["id"])
    page = _ATLAS_KINDS.get(kind, "techniques")
    return Entry(
        id=entry_id,
        framework="atlas",
        kind=kind,
        name=_text(raw.get("name")),
        description=_text(raw.get("description")),
        url=_ATLAS_URL.format(kind=page, id=entry_id),
        parent=str(parent) if parent else None,
        related=tuple(str(r) for r in related),
        attack=_attack(raw),
    )


def _frameworks(document: Mapping[str, Any]) -> tuple[list[Entry], dict[str, str]]:
    entries: list[Entry] = []
    names: dict[str, str] = {}
    kinds = {
        "owasp-llm-2025": "risk",
        "owasp-llm-2026": "risk",
        "owasp-agentic": "risk",
        "nist-ai-600-1": "risk",
    }
    for key, framework in document["frameworks"].items():
        names[key] = framework["name"]
        for entry_id, name in framework["entries"].items():
            entries.append(Entry(str(entry_id), key, kinds[key], str(name), url=framework["url"]))
    names["archetype"] = "Blastwall incident archetypes"
    for key, archetype in document["archetypes"].items():
        entries.append(
            Entry(
                key,
                "archetype",
                "archetype",
                archetype["name"],
                description=_text(archetype.get("description")),
                related=tuple(archetype.get("maps_to") or ()),
            )
        )
    return entries, names


def load(atlas_text: str, frameworks_text: str) -> Taxonomy:
    """The tables from the two files' texts. Raises ValueError on a duplicate id or an
    archetype mapped to an id that is in no table."""
    atlas = yaml.load(atlas_text, Loader=_LOADER)
    others, names = _frameworks(yaml.load(frameworks_text, Loader=_LOADER))
    entries: dict[str, Entry] = {}
    for entry in [*_atlas(atlas), *others]:
        if entry.id in entries:
            raise ValueError(f"taxonomy: the id {entry.id} is defined twice")
        entries[entry.id] = entry
    names = {"atlas": str(atlas.get("name", "MITRE ATLAS")), **names}
    built = Taxonomy(entries, atlas_version=str(atlas.get("version", "")), names=names)
    for entry in built.of("archetype"):
        missing = built.unknown(entry.related)
        if missing:
            raise ValueError(f"taxonomy: archetype {entry.id} maps to unknown {missing}")
    return built


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    """The tables shipped with the package."""
    data = resources.files(__package__).joinpath("data")
    return load(
        data.joinpath("ATLAS.yaml").read_text("utf-8"),
        data.joinpath("frameworks.yaml").read_text("utf-8"),
    )
