"""FastAPI dependencies shared by every router: the session, the caller, page parameters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from blastwall.auth import service as auth_service
from blastwall.auth.failures import FailedAuthentications
from blastwall.auth.roles import Principal
from blastwall.db import Database
from blastwall.errors import AuthenticationRequired
from blastwall.settings import Settings

bearer = HTTPBearer(auto_error=False, description="An API token from `blastwall token create`.")


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(request: Request) -> Iterator[Session]:
    read_only = request.method in ("GET", "HEAD", "OPTIONS")
    with get_db(request).session(read_only=read_only) as session:
        yield session


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller. Requests with a body, and mutating ones, were authenticated from their
    headers by the API's gate before their body was read (`api._Gate`); reads are here."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    try:
        principal = auth_service.authenticate(
            session, token=credentials.credentials if credentials else None
        )
    except AuthenticationRequired:
        failures: FailedAuthentications = request.app.state.auth_failures
        failures.failed(
            request.client.host if request.client else None,
            f"{'unknown or revoked' if credentials else 'no'} credentials "
            f"({request.method} request)",
        )
        raise
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


def page_params(
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, le=500, description="Items per page.")] = None,
    cursor: Annotated[
        str | None, Query(max_length=500, description="The `next` value of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(min(limit or settings.page_size, settings.max_page_size), cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


def audit_object(request: Request, value: str) -> None:
    """Name the object a mutating request touched, for the audit log."""
    request.state.audit_object = value


IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The incident's number.")]
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1)]
