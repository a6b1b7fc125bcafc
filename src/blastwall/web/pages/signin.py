"""Signing in with a personal token, and out."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from blastwall.auth import sessions
from blastwall.auth.failures import FailedAuthentications
from blastwall.dependencies import SessionDep, SettingsDep
from blastwall.errors import AuthenticationRequired
from blastwall.web.deps import COOKIE, ActionDep
from blastwall.web.render import SECURITY_HEADERS, go, page

router = APIRouter()
LOGIN_COOKIE = "bw_login"
"""Before a session exists, the sign-in form's CSRF token is a double-submit cookie."""


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a page of the interface, never another site."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/incidents"


def _form(
    request: Request, settings: SettingsDep, *, next_url: str, message: str = "", status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        status_code=status,
        login_csrf=token,
        next=next_url,
        message=message,
        level="error" if status >= 400 else "info",
        hours=f"{settings.ui_session_hours:g}",
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui/login",
        max_age=3600,
    )
    return response


@router.get("/login")
def login_page(
    request: Request,
    settings: SettingsDep,
    next_url: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
) -> Response:
    return _form(request, settings, next_url=safe_next(next_url))


@router.post("/login", status_code=303)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=500)] = "",
    login_csrf: Annotated[str, Form(max_length=200)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    """Exchange a token for a session cookie. The sign-in (or the failure) is audited."""
    target = safe_next(next_url)
    expected = request.cookies.get(LOGIN_COOKIE) or ""
    if not login_csrf or not secrets.compare_digest(login_csrf, expected):
        return _form(
            request,
            settings,
            next_url=target,
            message="The sign-in form was stale or came from another site; try again.",
            status=403,
        )
    try:
        signed_in, cookie = sessions.sign_in(
            session, token=token, lifetime=timedelta(hours=settings.ui_session_hours)
        )
    except AuthenticationRequired as exc:
        failures: FailedAuthentications = request.app.state.auth_failures
        failures.failed(
            request.client.host if request.client else None, "web sign-in with a bad token"
        )
        return _form(request, settings, next_url=target, message=exc.detail, status=401)
    # The request's unit of work commits the session with its audit record (as the
    # signed-in principal) when this returns (`dependencies.get_session`).
    request.state.principal = signed_in.principal
    request.state.audit_object = f"ui_session:{signed_in.session_id}"
    response = RedirectResponse(target, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        cookie,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
        max_age=int(settings.ui_session_hours * 3600),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return response


@router.post("/logout")
def logout(request: Request, act: ActionDep) -> Response:
    """End the session; its cookie is worthless from now on."""
    sessions.sign_out(act.session, session_id=act.ui.session_id)
    request.state.audit_object = f"ui_session:{act.ui.session_id}"
    response = go(request, "/ui/login")
    response.delete_cookie(COOKIE, path="/")
    return response
