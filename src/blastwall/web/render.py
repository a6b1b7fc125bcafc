"""Rendering the web interface: the Jinja2 templates, the context every page has, and
errors answered as pages (or, to htmx, as a message in the page's flash area)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from blastwall.auth.roles import Permission
from blastwall.auth.sessions import SignedIn

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(value: datetime | None) -> str:
    """A moment as responders read it: UTC, to the second."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def span(value: timedelta | float | None) -> str:
    """A duration in its two largest units: '2 h 05 min', '45 s'."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours:02d} h"
    if hours:
        return f"{sign}{hours} h {minutes:02d} min"
    if minutes:
        return f"{sign}{minutes} min {secs:02d} s"
    return f"{sign}{secs} s"


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


templates.env.filters["when"] = when
templates.env.filters["span"] = span
templates.env.filters["iso"] = iso
templates.env.globals["new_key"] = lambda: uuid.uuid4().hex


@pass_context
def hidden(context: Context) -> Markup:
    """The hidden fields every action form carries: the session's CSRF token and a new
    idempotency key (a form sent twice acts once)."""
    return Markup(
        f'<input type="hidden" name="csrf_token" value="{escape(context.get("csrf", ""))}">'
        f'<input type="hidden" name="idempotency_key" value="{uuid.uuid4().hex}">'
    )


templates.env.globals["hidden"] = hidden


def page(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render template `name` as a whole page (or, to an htmx request for a fragment,
    whatever the template renders)."""
    ui: SignedIn | None = getattr(request.state, "ui", None)
    principal = ui.principal if ui else None
    base = {
        "ui": ui,
        "principal": principal,
        "csrf": ui.csrf if ui else "",
        "can": (lambda p: principal.can(Permission(p))) if principal else (lambda p: False),
        "path": request.url.path,
    }
    response = templates.TemplateResponse(
        request, name, {**base, **context}, status_code=status_code
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def section(request: Request, name: str, *, incident: Any, **context: Any) -> HTMLResponse:
    """A section of the incident page (`name`, a fragment with its own h2): to htmx, the
    fragment alone, which the incident page loads into its placeholder; to a browser
    without JavaScript, a page of its own around it (`incident/section_page.html`)."""
    if request.headers.get("HX-Request") and not request.headers.get("HX-Boosted"):
        return page(request, name, incident=incident, **context)
    return page(request, "incident/section_page.html", fragment=name, incident=incident, **context)


def go(request: Request, url: str) -> Response:
    """Send the browser to `url` after an action: a 303 (plain forms), which htmx follows."""
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def sign_in_url(request: Request) -> str:
    back = request.headers.get("HX-Current-URL") if request.method != "GET" else None
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if back:
        target = back
    return f"/ui/login?next={quote(target, safe='')}"


def error_page(request: Request, status: int, title: str, detail: str, **extra: Any) -> Response:
    """An error of a web interface route: a sign-in redirect for 401; otherwise the error
    as a page, or to htmx as a message swapped into the page's flash area, so that what
    the person typed stays on the page."""
    if status == 401:
        url = sign_in_url(request)
        if request.headers.get("HX-Request"):
            response: Response = Response(status_code=204, headers={"HX-Redirect": url})
            return response
        return RedirectResponse(url, status_code=303)
    errors = extra.get("errors") or []
    name = "_flash.html" if request.headers.get("HX-Request") else "error.html"
    response = page(
        request,
        name,
        status_code=status,
        title=title,
        detail=detail,
        errors=errors,
        level="error",
    )
    if request.headers.get("HX-Request"):
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    return response
