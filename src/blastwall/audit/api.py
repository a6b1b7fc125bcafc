"""The audit log, for admins and legal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from blastwall.audit import service
from blastwall.audit.service import AuditOut
from blastwall.auth.roles import Permission
from blastwall.dependencies import PageDep, PrincipalDep, SessionDep
from blastwall.pagination import Page

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=Page[AuditOut])
def list_audit(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    object: Annotated[str | None, Query(max_length=300, description="e.g. incident:12")] = None,
) -> Page[AuditOut]:
    principal.require(Permission.read_audit)
    rows, next_cursor = service.list_entries(
        session, limit=page.limit, cursor=page.cursor, actor=actor, object=object
    )
    return Page(
        items=[AuditOut.model_validate(r, from_attributes=True) for r in rows], next=next_cursor
    )
