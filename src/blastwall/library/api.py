"""Routes of the known-incident library."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from blastwall.dependencies import PrincipalDep, SessionDep, SettingsDep, audit_object
from blastwall.library import service
from blastwall.library.schemas import ImportIn, ImportOut, KnownIncidentOut, KnownMatch
from blastwall.pagination import Page

router = APIRouter(tags=["library"])


@router.get("/library", response_model=Page[KnownIncidentOut])
def list_known(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    source: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[KnownIncidentOut]:
    """Known incidents from outside the organisation, by id."""
    rows, following = service.list_known(
        session,
        principal=principal,
        source=source,
        limit=min(limit or settings.page_size, settings.max_page_size),
        cursor=cursor,
    )
    return Page(items=[KnownIncidentOut.model_validate(r) for r in rows], next=following)


@router.get("/library/search", response_model=list[KnownMatch])
def search(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="Words to look for.")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[KnownMatch]:
    """The known incidents closest to the words (BM25 over title and description)."""
    found = service.search(session, text=q, principal=principal, limit=limit)
    return [
        KnownMatch(**KnownIncidentOut.model_validate(row).model_dump(), score=round(score, 3))
        for row, score in found
    ]


@router.get("/library/{known_id}", response_model=KnownIncidentOut)
def get_known(
    known_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: SessionDep, principal: PrincipalDep
) -> KnownIncidentOut:
    return KnownIncidentOut.model_validate(
        service.get(session, known_id=known_id, principal=principal)
    )


@router.post("/library/import", response_model=ImportOut)
def import_source(
    request: Request, body: ImportIn, session: SessionDep, principal: PrincipalDep
) -> ImportOut:
    """Import or refresh a source shipped with the installation (admin)."""
    result = service.import_source(session, source=body.source, actor=principal)
    audit_object(request, f"library:{body.source}")
    return ImportOut(**asdict(result))
