"""Errors answered as RFC 9457 problem+json: Blastwall's own errors with their status and
problems, request validation, HTTP errors, what the database refused, and the unexpected.
Errors are mapped to HTTP here and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from blastwall.errors import BlastwallError, field_path

__all__ = ["PROBLEM", "answer_errors", "blastwall_error", "problem"]

PROBLEM = "application/problem+json"
log = logging.getLogger("blastwall.api")


UI_PREFIX = "/ui/"
"""The web interface's routes, whose errors are pages (`app.state.error_page`)."""


def problem(request: Request, status: int, title: str, detail: str, **extra: Any) -> Response:
    error_page = getattr(request.app.state, "error_page", None)
    if error_page is not None and request.url.path.startswith(UI_PREFIX):
        answer: Response = error_page(request, status, title, detail, **extra)
        return answer
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(
        body,
        status_code=status,
        media_type=PROBLEM,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


async def blastwall_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BlastwallError)
    answer = problem(request, exc.status_code, exc.title, exc.detail, **exc.extra())
    if exc.status_code in (429, 503):
        answer.headers["Retry-After"] = "1"
    return answer


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": field_path(e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    fields = ", ".join(e["field"] for e in errors[:5])
    return problem(
        request,
        422,
        "Invalid input",
        f"The request has {len(errors)} problem(s) ({fields}); fix them and retry.",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    hints = {
        # FastAPI's answer to a body its JSON parser gives up on (a RecursionError included)
        400: "The body could not be read as JSON (malformed, or nested too deeply); send a "
        "JSON document as /openapi.json describes.",
        404: "Check the URL; the API lives under /api/v1 and is described at /openapi.json.",
        405: "This route does not take that method; see /openapi.json.",
    }
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem(request, exc.status_code, detail, hints.get(exc.status_code, detail))


async def _database_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    if isinstance(exc, IntegrityError):
        return problem(
            request,
            409,
            "Conflict",
            "The change conflicts with stored data (a duplicate or a missing "
            "reference); reload the object and retry. Nothing was changed.",
        )
    return problem(
        request,
        422,
        "Invalid input",
        "The database cannot store a value in this request (for example a NUL "
        "character or a number out of range); remove it and retry.",
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        request,
        500,
        "Internal error",
        "Blastwall failed on this request; the server log has the details. Nothing was changed.",
    )


def answer_errors(app: FastAPI) -> None:
    """Answer every error of `app`'s routes as problem+json."""
    app.add_exception_handler(BlastwallError, blastwall_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _database_refused)
    app.add_exception_handler(DataError, _database_refused)
    app.add_exception_handler(Exception, _unexpected)
