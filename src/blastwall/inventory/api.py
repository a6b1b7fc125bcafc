"""Inventory routes: systems, CycloneDX ML-BOM import and export, the change log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from blastwall.auth.roles import Permission
from blastwall.dependencies import PageDep, PrincipalDep, SessionDep, audit_object
from blastwall.errors import InvalidInput, Problem
from blastwall.inventory import service
from blastwall.inventory.cyclonedx import from_cyclonedx, to_cyclonedx
from blastwall.inventory.loader import spec_from_mapping
from blastwall.inventory.models import Change, System
from blastwall.inventory.schemas import (
    ApplyResult,
    ChangeIn,
    ChangeKind,
    ChangeOut,
    SystemDetail,
    SystemOut,
    SystemSpec,
    SystemType,
)
from blastwall.pagination import Page
from blastwall.telemetry.capture import state_of as content_capture

router = APIRouter(tags=["inventory"])


def system_out(row: System) -> SystemOut:
    return SystemOut.model_validate(row, from_attributes=True)


def change_out(row: Change) -> ChangeOut:
    return ChangeOut.model_validate(row, from_attributes=True)


@router.get("/systems", response_model=Page[SystemOut])
def list_systems(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    type: Annotated[SystemType | None, Query()] = None,
) -> Page[SystemOut]:
    rows, next_cursor = service.list_systems(
        session, limit=page.limit, cursor=page.cursor, type=type.value if type else None
    )
    return Page(items=[system_out(r) for r in rows], next=next_cursor)


@router.get("/systems/{system_id}", response_model=SystemDetail)
def get_system(system_id: str, session: SessionDep, principal: PrincipalDep) -> SystemDetail:
    """One system: its declaration as applied, and whether its GenAI model calls arrive with
    their content (`content_capture`)."""
    row = service.get_system(session, system_id=system_id)
    return SystemDetail(
        **system_out(row).model_dump(),
        content_capture=content_capture(session, system_id=row.id),
    )


CYCLONEDX = "application/vnd.cyclonedx+json"


@router.get(
    "/systems/{system_id}/cyclonedx",
    response_class=Response,
    responses={200: {"content": {CYCLONEDX: {}}, "description": "A CycloneDX 1.6 ML-BOM."}},
)
def export_cyclonedx(system_id: str, session: SessionDep, principal: PrincipalDep) -> Response:
    """The system as a CycloneDX 1.6 ML-BOM (JSON)."""
    spec = service.get_system(session, system_id=system_id).parsed
    return Response(to_cyclonedx(spec), media_type=CYCLONEDX)


def _read_bom(body: bytes) -> SystemSpec:
    """The system a CycloneDX JSON body describes. A document nested deeper than the parser
    and the schema check can follow is refused like any malformed one (422), not a 500."""
    try:
        return from_cyclonedx(body.decode("utf-8", errors="replace"))
    except RecursionError:
        raise InvalidInput(
            "The BOM is nested too deeply to read. Export it as CycloneDX JSON with its "
            "components nested as they are in the system (a few levels).",
            [Problem("$", "nested too deeply")],
        ) from None


@router.post(
    "/systems/cyclonedx",
    response_model=ApplyResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                CYCLONEDX: {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def import_cyclonedx(
    request: Request, session: SessionDep, principal: PrincipalDep
) -> ApplyResult:
    """Create or update a system from a CycloneDX ML-BOM (JSON body)."""
    principal.require(Permission.write_inventory)
    body = await request.body()  # read by the gate within BLASTWALL_IMPORT_MAX_BODY_BYTES
    spec = await run_in_threadpool(_read_bom, body)
    spec = service.keep_prompt_texts(session, spec)
    audit_object(request, f"system:{spec.id}")
    return await run_in_threadpool(
        service.apply_specs, session, specs=[spec], actor=principal.name, source="cyclonedx"
    )


@router.post("/systems", response_model=ApplyResult)
def apply_systems(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    body: Annotated[
        dict[str, Any] | list[dict[str, Any]],
        Body(description="One system declaration, or a list of them (the YAML format as JSON)."),
    ],
) -> ApplyResult:
    """Create or update systems; every difference goes to the change log."""
    principal.require(Permission.write_inventory)
    documents = body if isinstance(body, list) else [body]
    specs = [
        spec_from_mapping(d, where=f"body[{i}]" if isinstance(body, list) else "body")
        for i, d in enumerate(documents)
    ]
    audit_object(request, ",".join(f"system:{s.id}" for s in specs)[:300])
    return service.apply_specs(session, specs=specs, actor=principal.name, source="api")


@router.post("/changes", response_model=ChangeOut, status_code=201)
def record_change(
    request: Request, change: ChangeIn, session: SessionDep, principal: PrincipalDep
) -> ChangeOut:
    """Record a deploy, a prompt or model change or a flag flip against a system."""
    principal.require(Permission.record_changes)
    row = service.record_change(session, change=change, actor=principal.name)
    audit_object(request, f"change:{row.id}")
    return change_out(row)


@router.get("/changes", response_model=Page[ChangeOut])
def list_changes(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    system: Annotated[str | None, Query(max_length=100, description="A system id.")] = None,
    since: Annotated[datetime | None, Query(description="Changes at or after this time.")] = None,
    until: Annotated[datetime | None, Query(description="Changes before this time.")] = None,
    kind: Annotated[ChangeKind | None, Query()] = None,
) -> Page[ChangeOut]:
    """The change log, newest first: the first triage question is "what changed?"."""
    rows, next_cursor = service.list_changes(
        session,
        limit=page.limit,
        cursor=page.cursor,
        system_id=system,
        since=since,
        until=until,
        kind=kind.value if kind else None,
    )
    return Page(items=[change_out(r) for r in rows], next=next_cursor)
