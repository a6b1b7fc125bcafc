"""Mounting the web interface on the application."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from blastwall.web.pages import (
    affected,
    comms,
    containment,
    evidence,
    hunts,
    incident,
    incidents,
    obligations,
    signals,
    signin,
    systems,
    triage_pack,
)
from blastwall.web.render import HERE, error_page

PREFIX = "/ui"


def install(app: FastAPI) -> None:
    """Serve the interface under /ui (its assets under /ui/static), and `/` as its front
    door; errors of its routes are pages (`render.error_page`)."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    pages = (
        signin,
        incidents,
        incident,
        triage_pack,
        containment,
        affected,
        evidence,
        comms,
        obligations,
        systems,
        signals,
        hunts,
    )
    for module in pages:
        router.include_router(module.router)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.state.error_page = error_page

    @app.get("/", include_in_schema=False)
    def front_door() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/incidents", status_code=303)
