"""Token routes, for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from blastwall.auth import service
from blastwall.auth.models import ApiToken
from blastwall.auth.roles import Permission, Role
from blastwall.dependencies import ItemId, PageDep, PrincipalDep, SessionDep, audit_object
from blastwall.pagination import Page

router = APIRouter(tags=["tokens"])


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    role: Role
    replace: bool = Field(
        default=False, description="Rotate: revoke the principal's active tokens first."
    )
    add: bool = Field(
        default=False,
        description="A further token of an existing principal; without it, a "
        "name that has an active token is refused (409).",
    )


class TokenOut(BaseModel):
    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str


def token_out(row: ApiToken) -> TokenOut:
    return TokenOut.model_validate(row, from_attributes=True)


@router.get("/tokens", response_model=Page[TokenOut])
def list_tokens(session: SessionDep, principal: PrincipalDep, page: PageDep) -> Page[TokenOut]:
    """Tokens, revoked ones included (never their secrets)."""
    principal.require(Permission.manage_tokens)
    rows, next_cursor = service.list_tokens(
        session, include_revoked=True, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[token_out(r) for r in rows], next=next_cursor)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(
    request: Request, body: TokenCreate, session: SessionDep, principal: PrincipalDep
) -> TokenCreated:
    """Issue a token. The secret is in this answer only; the server keeps its hash."""
    principal.require(Permission.manage_tokens)
    row, secret = service.create_token(
        session,
        name=body.name,
        role=body.role,
        created_by=principal.name,
        replace=body.replace,
        add=body.add,
    )
    audit_object(request, f"token:{row.id}")
    return TokenCreated(**token_out(row).model_dump(), token=secret)


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut)
def revoke_token(
    request: Request, token_id: ItemId, session: SessionDep, principal: PrincipalDep
) -> TokenOut:
    principal.require(Permission.manage_tokens)
    audit_object(request, f"token:{token_id}")
    return token_out(service.revoke_token(session, token_id=token_id))
