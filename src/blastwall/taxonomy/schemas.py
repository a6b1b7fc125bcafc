"""API shapes of the taxonomy."""

from __future__ import annotations

from pydantic import BaseModel

from blastwall.taxonomy.tables import Entry, Taxonomy


class EntryRef(BaseModel):
    id: str
    framework: str
    name: str


class EntryOut(BaseModel):
    id: str
    framework: str
    framework_name: str
    kind: str
    name: str
    description: str
    url: str | None
    parent: EntryRef | None
    related: list[EntryRef]
    """Tactics of a technique, techniques of a mitigation or case study, what an archetype
    maps to."""
    archetypes: list[EntryRef]
    mapped: list[EntryRef]
    """The entries of the other frameworks that this one corresponds to (through the
    archetypes)."""
    attack: str | None

    @classmethod
    def of(cls, entry: Entry, tables: Taxonomy) -> EntryOut:
        def ref(entry_id: str) -> EntryRef:
            found = tables.entries.get(entry_id)
            name = found.name if found else entry_id
            return EntryRef(id=entry_id, framework=found.framework if found else "", name=name)

        return cls(
            id=entry.id,
            framework=entry.framework,
            framework_name=tables.names.get(entry.framework, entry.framework),
            kind=entry.kind,
            name=entry.name,
            description=entry.description,
            url=entry.url,
            parent=ref(entry.parent) if entry.parent else None,
            related=[ref(i) for i in entry.related],
            archetypes=[ref(a.id) for a in tables.archetypes(entry.id)],
            mapped=[ref(m.id) for m in tables.mapped(entry.id)],
            attack=entry.attack,
        )
