"""Telemetry routes: the OTLP/HTTP receiver at /v1/traces and the queries under /api/v1."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool

from blastwall.auth import service as auth_service
from blastwall.auth.roles import Permission
from blastwall.db import Database
from blastwall.dependencies import PageDep, PrincipalDep, SessionDep, audit_object
from blastwall.errors import (
    AuthenticationRequired,
    InvalidInput,
    PayloadTooLarge,
    UndecodableBody,
    UnsupportedMediaType,
)
from blastwall.gate import too_large
from blastwall.pagination import Page
from blastwall.settings import Settings
from blastwall.telemetry import flows, service
from blastwall.telemetry.models import ContextSpan, Interaction
from blastwall.telemetry.otlp import Decoded, decode_json, decode_protobuf, gunzip
from blastwall.telemetry.schemas import (
    IngestKeyCreate,
    IngestKeyCreated,
    IngestKeyOut,
    InteractionOut,
    SpanNode,
    TraceOut,
    UnregisteredOut,
)

router = APIRouter(tags=["telemetry"])

# OTLP/HTTP lives at the path the OTLP specification gives, outside /api/v1.
otlp_router = APIRouter(tags=["otlp"])

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
KEY_HEADER = "x-blastwall-ingest-key"
TraceId = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{32}$", description="32 hex digits.")]


def _media_type(request: Request) -> str:
    value = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if value in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if value == JSON:
        return JSON
    raise UnsupportedMediaType(
        f"OTLP/HTTP takes '{PROTOBUF}' or '{JSON}', not '{value or '(none)'}'. Set the "
        "exporter's protocol to http/protobuf or http/json."
    )


def authenticate_sender(db: Database, settings: Settings, request: Request) -> None:
    """Who sends a batch, from its headers: an ingest key's system or a token's principal
    (into `request.state.ingest_system`, `request.state.principal`); raises when neither is
    acceptable. The API's gate (`api._Gate`) calls it before reading the body."""
    key = request.headers.get(KEY_HEADER)
    authorization = request.headers.get("authorization", "")
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
    with db.session(read_only=True) as session:
        if key and settings.otlp_auth in ("either", "key"):
            request.state.ingest_system = service.system_for_key(session, key=key)
            return
        if token and settings.otlp_auth in ("either", "token"):
            principal = auth_service.authenticate(session, token=token)
            request.state.principal = principal
            principal.require(Permission.ingest)
            request.state.ingest_system = None
            return
    wanted = {
        "either": f"'Authorization: Bearer <token>' or '{KEY_HEADER}: <key>'",
        "token": "'Authorization: Bearer <token>'",
        "key": f"'{KEY_HEADER}: <key>'",
    }[settings.otlp_auth]
    raise AuthenticationRequired(f"Sending telemetry needs {wanted}.")


def _receive(
    db: Database,
    settings: Settings,
    request: Request,
    body: bytes,
    media: str,
    key_system: str | None,
) -> service.IngestResult:
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding not in ("gzip", "identity", ""):
        raise UnsupportedMediaType("Content-Encoding must be gzip or absent.")
    try:
        if encoding == "gzip":
            body = _gunzip(body, settings.ingest_max_decompressed_bytes)
        decoded: Decoded = decode_protobuf(body) if media == PROTOBUF else decode_json(body)
    except InvalidInput as exc:
        raise UndecodableBody(exc.detail, exc.problems) from None
    with db.transaction() as session:
        return flows.ingest(
            session,
            decoded=decoded,
            key_system=key_system,
            detection=request.app.state.detection,
        )


def _gunzip(body: bytes, limit: int) -> bytes:
    """The body decompressed; one that expands past `limit` is too large (413), not
    undecodable."""
    try:
        return gunzip(body, limit)
    except InvalidInput as exc:
        if any(p.message.startswith("decompressed size exceeds") for p in exc.problems):
            raise PayloadTooLarge(exc.detail) from None
        raise


def _answer(result: service.IngestResult, media: str) -> Response:
    message = "; ".join(result.errors)[:2000]
    if media == PROTOBUF:
        reply = ExportTraceServiceResponse()
        if result.rejected:
            reply.partial_success.rejected_spans = result.rejected
            reply.partial_success.error_message = message
        return Response(reply.SerializeToString(), media_type=PROTOBUF)
    document: dict[str, Any] = {}
    if result.rejected:
        document["partialSuccess"] = {
            "rejectedSpans": str(result.rejected),
            "errorMessage": message,
        }
    return Response(orjson.dumps(document), media_type=JSON)


@otlp_router.post(
    "/v1/traces",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                JSON: {"schema": {"type": "object"}},
            },
        }
    },
    responses={
        200: {"description": "ExportTraceServiceResponse; partial_success counts refused spans."},
        400: {"description": "The body could not be decoded."},
        413: {"description": "The body is too large."},
        503: {"description": "Overloaded; retry after the Retry-After seconds."},
    },
)
async def receive_traces(request: Request) -> Response:
    """OTLP/HTTP trace receiver (protobuf or JSON, optionally gzip). A 200 means every
    accepted span is committed."""
    app = request.app
    settings: Settings = app.state.settings
    if not hasattr(request.state, "ingest_system"):  # the gate has authenticated it before
        await run_in_threadpool(authenticate_sender, app.state.db, settings, request)
    key_system: str | None = request.state.ingest_system
    media = _media_type(request)
    # The gate read the body within BLASTWALL_INGEST_MAX_BODY_BYTES, and answered requests
    # beyond BLASTWALL_INGEST_MAX_CONCURRENCY 503, before this runs.
    body = await request.body()
    if len(body) > settings.ingest_max_body_bytes:
        raise too_large(settings.ingest_max_body_bytes)
    result = await run_in_threadpool(
        _receive, app.state.db, settings, request, body, media, key_system
    )
    audit_object(request, f"spans:{result.accepted}")
    return _answer(result, media)


# --- queries ------------------------------------------------------------------------------


def _interaction(row: Interaction, *, show_content: bool) -> InteractionOut:
    out = InteractionOut.model_validate(row)
    if not show_content:
        hidden = dict.fromkeys(service.CONTENT_FIELDS)
        out = out.model_copy(update={**hidden, "content_hidden": True})
    return out


@router.get("/interactions", response_model=Page[InteractionOut], response_model_by_alias=True)
def list_interactions(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    system: Annotated[str | None, Query(max_length=100)] = None,
    unregistered: Annotated[bool, Query(description="Only spans of unknown systems.")] = False,
    conversation: Annotated[str | None, Query(max_length=200)] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
    operation: Annotated[str | None, Query(max_length=40)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    tool: Annotated[str | None, Query(max_length=200)] = None,
    trace: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> Page[InteractionOut]:
    """GenAI interactions newest first. Prompt and output content is shown to roles that may
    see it (responder, commander, legal, admin)."""
    where = service.InteractionFilter(
        system_id=system,
        unregistered=unregistered,
        conversation_id=conversation,
        user_id=user,
        operation=operation,
        model=model,
        tool=tool,
        trace_id=trace,
        since=since,
        until=until,
    )
    rows, next_cursor = service.list_interactions(
        session, where=where, limit=page.limit, cursor=page.cursor
    )
    show = principal.can(Permission.see_content)
    return Page(items=[_interaction(r, show_content=show) for r in rows], next=next_cursor)


@router.get(
    "/interactions/{interaction_id}", response_model=InteractionOut, response_model_by_alias=True
)
def get_interaction(
    interaction_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    session: SessionDep,
    principal: PrincipalDep,
) -> InteractionOut:
    row = service.get_interaction(session, interaction_id=interaction_id)
    return _interaction(row, show_content=principal.can(Permission.see_content))


def _tree(interactions: list[Interaction], context: list[ContextSpan]) -> list[SpanNode]:
    nodes: dict[str, SpanNode] = {}
    for c in context:
        nodes[c.span_id] = SpanNode(
            span_id=c.span_id,
            parent_span_id=c.parent_span_id,
            name=c.name,
            system_id=c.system_id,
            service_name=c.service_name,
            start_time=c.start_time,
            end_time=c.end_time,
        )
    for i in interactions:
        nodes[i.span_id] = SpanNode(
            span_id=i.span_id,
            parent_span_id=i.parent_span_id,
            name=i.name,
            system_id=i.system_id,
            service_name=i.service_name,
            start_time=i.start_time,
            end_time=i.end_time,
            interaction_id=i.id,
            operation=i.operation,
        )
    roots: list[SpanNode] = []
    for node in sorted(nodes.values(), key=lambda n: n.start_time):
        parent = nodes.get(node.parent_span_id or "")
        if parent is not None and parent is not node:
            parent.children.append(node)
        else:
            roots.append(node)
    return roots


@router.get("/traces/{trace_id}", response_model=TraceOut)
def get_trace(trace_id: TraceId, session: SessionDep, principal: PrincipalDep) -> TraceOut:
    """The trace as a tree: GenAI interactions and the spans around them."""
    interactions, context = service.trace_spans(session, trace_id=trace_id.lower())
    return TraceOut(
        trace_id=trace_id.lower(),
        spans=len(interactions) + len(context),
        interactions=len(interactions),
        roots=_tree(interactions, context),
    )


@router.get("/telemetry/unregistered", response_model=Page[UnregisteredOut])
def unregistered(session: SessionDep, principal: PrincipalDep) -> Page[UnregisteredOut]:
    """AI services that send telemetry but are not in the inventory (shadow AI)."""
    rows = service.unregistered_services(session)
    return Page(items=[UnregisteredOut.model_validate(r) for r in rows], next=None)


@router.get("/telemetry/keys", response_model=Page[IngestKeyOut])
def list_keys(
    session: SessionDep,
    principal: PrincipalDep,
    system: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[IngestKeyOut]:
    principal.require(Permission.manage_tokens)
    rows = service.list_keys(session, system_id=system)
    return Page(items=[IngestKeyOut.model_validate(r) for r in rows], next=None)


@router.post("/telemetry/keys", response_model=IngestKeyCreated, status_code=201)
def create_key(
    request: Request, body: IngestKeyCreate, session: SessionDep, principal: PrincipalDep
) -> IngestKeyCreated:
    """Issue a per-system ingest key for `X-Blastwall-Ingest-Key`; shown only in this answer."""
    principal.require(Permission.manage_tokens)
    row, secret = service.create_key(session, system_id=body.system_id, created_by=principal.name)
    audit_object(request, f"ingest_key:{row.id}")
    return IngestKeyCreated(**IngestKeyOut.model_validate(row).model_dump(), key=secret)


@router.post("/telemetry/keys/{key_id}/revoke", response_model=IngestKeyOut)
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: SessionDep, principal: PrincipalDep
) -> IngestKeyOut:
    principal.require(Permission.manage_tokens)
    return IngestKeyOut.model_validate(service.revoke_key(session, key_id=key_id))
