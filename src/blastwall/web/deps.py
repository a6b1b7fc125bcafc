"""Who is at the browser, and the checks every action of the web interface passes.

Reads authenticate here, from the session cookie. Actions (POSTs) were authenticated from
the same cookie by the API's gate before their body was read (`api._Gate`); here they also
show the session's CSRF token and an idempotency key, and run once per key
(`auth.sessions.once`), in the request's transaction with its audit record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from blastwall.auth import sessions
from blastwall.auth.roles import Principal
from blastwall.auth.sessions import SignedIn
from blastwall.dependencies import SessionDep, route_template
from blastwall.errors import InvalidInput, Problem, field_path
from blastwall.web.render import go

COOKIE = "bw_session"
"""The session cookie's name (HttpOnly, SameSite=Strict, Secure over TLS)."""


def signed_in(request: Request, session: SessionDep) -> SignedIn:
    """The browser's session, or 401, which the interface answers with the sign-in page."""
    known = getattr(request.state, "ui", None)
    if isinstance(known, SignedIn):
        return known
    ui = sessions.resolve(session, cookie=request.cookies.get(COOKIE))
    request.state.ui = ui
    request.state.principal = ui.principal
    return ui


UiDep = Annotated[SignedIn, Depends(signed_in)]


@dataclass
class Action:
    """One form sent by a signed-in person: do it once, then show where it led."""

    request: Request
    session: Session
    ui: SignedIn
    key: str

    @property
    def principal(self) -> Principal:
        return self.ui.principal

    def run(self, act: Callable[[], str]) -> Response:
        """Do `act` (which answers the URL to show next) once per idempotency key, and send
        the browser there."""
        try:
            url = sessions.once(
                self.session,
                principal=self.principal,
                key=self.key,
                route=route_template(self.request),
                act=act,
            )
        except ValidationError as exc:  # a form's fields, checked by the API's schema
            problems = [Problem(field_path(e["loc"]) or "form", e["msg"]) for e in exc.errors()]
            raise InvalidInput(
                f"The form has {len(problems)} problem(s); correct them and send it again.",
                problems,
            ) from exc
        return go(self.request, url)


def action(
    request: Request,
    session: SessionDep,
    ui: UiDep,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
    idempotency_key: Annotated[str | None, Form(max_length=200)] = None,
) -> Action:
    """A form's CSRF token (the `csrf_token` field or the `X-CSRF-Token` header) is checked
    before anything is done."""
    sessions.check_csrf(ui, csrf_token or request.headers.get("X-CSRF-Token"))
    key = idempotency_key or request.headers.get("Idempotency-Key") or ""
    return Action(request, session, ui, key)


ActionDep = Annotated[Action, Depends(action)]
