"""FastAPI dependencies shared by every router: the session, the caller, page parameters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from blastwall.audit import service as audit_service
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


def get_session(request: Request, response: Response) -> Iterator[Session]:
    """The request's unit of work. A mutating request's changes are committed when its
    route returns, before the response is sent, together with its audit record (one
    transaction: both or neither); when the route raises, nothing is committed, and the
    API's gate records the refusal in the audit log on its own (`api._Gate`)."""
    read_only = request.method in ("GET", "HEAD", "OPTIONS")
    with get_db(request).session(read_only=read_only) as session:
        yield session
        if read_only:
            return
        principal = getattr(request.state, "principal", None)
        if isinstance(principal, Principal):
            status = response.status_code or succeeded(request)
            audit_service.record(session, **audit_entry(request, principal, status))
            request.state.audited = True
        session.commit()


def succeeded(request: Request) -> int:
    """The status a route answers when it returns normally and sets none of its own: its
    declared one."""
    route = request.scope.get("route")
    status = getattr(route, "status_code", None)
    return status if isinstance(status, int) else 200


def audit_target(request: Request) -> str | None:
    """The object a request touched, for the audit log: the one the route named
    (`audit_object`), else its path parameters."""
    explicit = getattr(request.state, "audit_object", None)
    if explicit:
        return str(explicit)
    params = request.scope.get("path_params") or {}
    parts = [f"{k.removesuffix('_id')}:{v}" for k, v in params.items()]
    return "/".join(parts) or None


def route_template(request: Request) -> str:
    """The path with each path parameter's value put back as `{name}`."""
    values = {str(v): k for k, v in (request.scope.get("path_params") or {}).items()}
    return "/".join(
        f"{{{values[seg]}}}" if seg in values else seg for seg in request.url.path.split("/")
    )


def audit_entry(request: Request, principal: Principal | None, status: int) -> dict[str, Any]:
    """The audit record of a request (`audit.service.record`'s arguments)."""
    return {
        "actor": principal.name if principal else "anonymous",
        "role": principal.role.value if principal else None,
        "method": request.method,
        "route": route_template(request),
        "path": request.url.path,
        "object": audit_target(request),
        "status_code": status,
    }


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
