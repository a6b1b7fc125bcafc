"""Routes of the taxonomy: the entries of every framework, and one entry explained."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from blastwall.auth.roles import Permission
from blastwall.dependencies import PrincipalDep
from blastwall.errors import InvalidInput, Problem, UnknownKind
from blastwall.pagination import Page
from blastwall.taxonomy.schemas import EntryOut
from blastwall.taxonomy.tables import taxonomy

router = APIRouter(tags=["taxonomy"])

Framework = Literal[
    "atlas", "owasp-llm-2025", "owasp-llm-2026", "owasp-agentic", "nist-ai-600-1", "archetype"
]


@router.get("/taxonomy", response_model=Page[EntryOut])
def list_entries(
    principal: PrincipalDep,
    framework: Framework | None = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=100, description="`next` of the page before.")
    ] = None,
) -> Page[EntryOut]:
    """Taxonomy entries in framework order, then by id; `next` is the id to go on after."""
    principal.require(Permission.read)
    tables = taxonomy()
    try:
        entries = tables.of(framework, kind)
    except UnknownKind as exc:
        raise InvalidInput(str(exc), problems=[Problem("query.kind", exc.hint)]) from None
    start = 0
    if cursor:
        ids = [e.id for e in entries]
        if cursor not in ids:
            raise InvalidInput(
                "The cursor is not an entry of this list; pass the `next` of the page before.",
                problems=[Problem("query.cursor", f"no entry '{cursor}' in this list")],
            )
        start = ids.index(cursor) + 1
    page = entries[start : start + limit]
    more = start + limit < len(entries)
    return Page(items=[EntryOut.of(e, tables) for e in page], next=page[-1].id if more else None)


@router.get("/taxonomy/{entry_id}", response_model=EntryOut)
def show_entry(entry_id: Annotated[str, Path(max_length=100)], principal: PrincipalDep) -> EntryOut:
    """One entry: what it is, its parent, tactics or techniques, and what it maps to."""
    principal.require(Permission.read)
    tables = taxonomy()
    return EntryOut.of(tables.get(entry_id), tables)
