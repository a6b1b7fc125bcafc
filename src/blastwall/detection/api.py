"""Routes of detection: canary tokens, the registered detectors, where they run."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from blastwall.auth.roles import Permission, Role
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
from blastwall.errors import PermissionDenied
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


class WorkerOut(BaseModel):
    index: int = Field(description="The worker's place; an AI system always goes to the same.")
    pid: int | None = Field(description="Its process id.")
    alive: bool = Field(description="Whether its process runs now.")
    started_at: datetime = Field(description="When its current process started.")
    restarts: int = Field(description="Times a new process took its place after one died.")
    done: int = Field(description="Batches it has run and stored since the server started.")
    queued: int = Field(description="Batches handed to it and not done yet.")
    signals: int = Field(description="Signals it stored.")
    last_error: str | None = Field(
        description="The last thing that went wrong: a batch that could not be run or stored, "
        "detectors that raised, a batch left out because it was behind, its process dying."
    )
    last_error_at: datetime | None


class WorkersStatusOut(BaseModel):
    mode: Literal["workers", "inline", "off"] = Field(
        description="workers: detectors in worker processes beside the server; inline: in "
        "the ingest request (BLASTWALL_DETECTION_WORKERS=0); off: BLASTWALL_DETECTION=false."
    )
    server_pid: int = Field(
        description="The server process that answered: with `blastwall serve --workers N` "
        "each server process has detection workers of its own."
    )
    workers: list[WorkerOut] = Field(description="Empty unless the mode is workers.")
    totals: WorkersOut | None = None


@router.get("/detection/workers", response_model=WorkersStatusOut)
def detection_workers(request: Request, principal: PrincipalDep) -> WorkersStatusOut:
    """This server process's detection workers, one by one: process id, liveness, batches
    done and queued, restarts, last error (admin)."""
    if principal.role is not Role.admin:
        raise PermissionDenied(
            f"The role '{principal.role.value}' may not see the detection workers (process ids "
            "and errors). Use a token with the role admin."
        )
    engine = request.app.state.detection
    if not isinstance(engine, DetectionWorkers):
        return WorkersStatusOut(
            mode="inline" if engine is not None else "off", server_pid=os.getpid(), workers=[]
        )
    return WorkersStatusOut(
        mode="workers",
        server_pid=os.getpid(),
        workers=[WorkerOut(**w) for w in engine.workers()],
        totals=WorkersOut(**engine.status()),
    )
