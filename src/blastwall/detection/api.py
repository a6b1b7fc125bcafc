"""Routes of detection: canary tokens, the registered detectors, where they run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from blastwall.auth.roles import Permission
from blastwall.dependencies import PrincipalDep, SessionDep, audit_object
from blastwall.detection import service
from blastwall.detection.engine import detector_classes
from blastwall.detection.schemas import (
    CanaryCreate,
    CanaryCreated,
    CanaryOut,
    DetectionOut,
    DetectorOut,
    WorkersOut,
)
from blastwall.detection.workers import DetectionWorkers
from blastwall.pagination import Page

router = APIRouter(tags=["detection"])


@router.post("/canaries", response_model=CanaryCreated, status_code=201)
def issue_canary(
    request: Request, body: CanaryCreate, session: SessionDep, principal: PrincipalDep
) -> CanaryCreated:
    """Issue a canary token for a system prompt; the token is shown only in this answer.
    Any output or tool-call argument that carries it raises a critical signal."""
    row, token = service.issue_canary(
        session, system_id=body.system_id, note=body.note, actor=principal
    )
    audit_object(request, f"canary:{row.id}")
    return CanaryCreated(**CanaryOut.model_validate(row).model_dump(), token=token)


@router.get("/canaries", response_model=Page[CanaryOut])
def list_canaries(
    session: SessionDep,
    principal: PrincipalDep,
    system: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[CanaryOut]:
    """Canary tokens (their prefixes, never the tokens)."""
    rows = service.list_canaries(session, principal=principal, system_id=system)
    return Page(items=[CanaryOut.model_validate(r) for r in rows], next=None)


@router.post("/canaries/{canary_id}/revoke", response_model=CanaryOut)
def revoke_canary(
    request: Request,
    canary_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    session: SessionDep,
    principal: PrincipalDep,
) -> CanaryOut:
    """Stop watching for a canary token."""
    row = service.revoke_canary(session, canary_id=canary_id, actor=principal)
    audit_object(request, f"canary:{row.id}")
    return CanaryOut.model_validate(row)


@router.get("/detectors", response_model=list[DetectorOut])
def list_detectors(request: Request, principal: PrincipalDep) -> list[DetectorOut]:
    """The registered detectors, their settings' schema and failures since start."""
    principal.require(Permission.read)
    engine = request.app.state.detection
    classes = engine.classes if engine is not None else detector_classes()
    return [
        DetectorOut(
            id=cls.id,
            version=cls.version,
            description=cls.description,
            stateful=cls.stateful,
            settings=cls.Config.model_json_schema(),
            failures=engine.failures[cls.id] if engine is not None else 0,
        )
        for cls in classes
    ]


@router.get("/detection", response_model=DetectionOut)
def detection_status(request: Request, principal: PrincipalDep) -> DetectionOut:
    """Where this server process runs the detectors and, for worker processes, their
    backlog and what they dropped or lost."""
    principal.require(Permission.read)
    engine = request.app.state.detection
    if isinstance(engine, DetectionWorkers):
        return DetectionOut(mode="workers", workers=WorkersOut(**engine.status()))
    return DetectionOut(mode="inline" if engine is not None else "off")
