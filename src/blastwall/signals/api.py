"""Signals routes: generic signals, people's reports and the Alertmanager webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from blastwall.dependencies import PageDep, PrincipalDep, SessionDep, audit_object
from blastwall.errors import InvalidInput, Problem
from blastwall.incidents.schemas import Archetype
from blastwall.pagination import Page
from blastwall.signals import alertmanager, service
from blastwall.signals.schemas import (
    IngestResult,
    ReportCreate,
    ReportOut,
    SignalCreate,
    SignalOut,
    SignalSeverity,
    SignalStatus,
    UtcDatetime,
)

router = APIRouter(tags=["signals"])

SignalId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The signal's number.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=service.KEY_HEADER,
        description="A key of your choosing (1-255 printable ASCII characters, a UUID say), "
        "as an HTTP structured-field string or bare: the request sent again with it is "
        "answered what the first one created, and stores nothing. Remembered 24 hours, per "
        "token name; the same key with another body is refused 422.",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"


def _idempotency(
    value: str | None, *, route: str, body: SignalCreate | ReportCreate
) -> service.Idempotency | None:
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':  # sf-string, as the IETF draft writes it
        key = key[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not 1 <= len(key) <= 255 or not all(" " <= c <= "~" for c in key):
        raise InvalidInput(
            f"The {service.KEY_HEADER} header must be 1-255 printable ASCII characters, "
            'e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324".',
            problems=[Problem(f"header.{service.KEY_HEADER}", "1-255 printable ASCII characters")],
        )
    return service.Idempotency.of(key, route=route, body=body)


@router.get("/signals", response_model=Page[SignalOut])
def list_signals(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    system: Annotated[
        str | None,
        Query(max_length=200, description="An inventory system id, or a name as sent."),
    ] = None,
    source: Annotated[str | None, Query(max_length=100)] = None,
    detector: Annotated[
        str | None, Query(max_length=100, description="Only findings of this detector.")
    ] = None,
    kind: Annotated[str | None, Query(max_length=200)] = None,
    archetype: Annotated[Archetype | None, Query()] = None,
    severity: Annotated[SignalSeverity | None, Query()] = None,
    status: Annotated[SignalStatus | None, Query()] = None,
    since: Annotated[
        UtcDatetime | None, Query(description="Received at or after (RFC 3339, with offset).")
    ] = None,
    until: Annotated[UtcDatetime | None, Query(description="Received before.")] = None,
    conversation_id: Annotated[str | None, Query(max_length=200)] = None,
    trace_id: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{32}$")] = None,
    unregistered: Annotated[
        bool | None,
        Query(description="true: only signals naming a system that is not in the inventory."),
    ] = None,
    held_by: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Only signals held back by this rule: snooze:ID, maintenance:ID or "
            "inhibition:NAME.",
        ),
    ] = None,
) -> Page[SignalOut]:
    """Signals, newest first."""
    rows, next_cursor = service.list_signals(
        session,
        principal=principal,
        limit=page.limit,
        cursor=page.cursor,
        system=system,
        source=source,
        detector=detector,
        kind=kind,
        archetype=archetype.value if archetype else None,
        severity=severity.value if severity else None,
        status=status.value if status else None,
        since=since,
        until=until,
        conversation_id=conversation_id,
        trace_id=trace_id,
        unregistered=unregistered,
        held_by=held_by,
    )
    return Page(items=[service.to_out(r) for r in rows], next=next_cursor)


@router.post("/signals", response_model=SignalOut, status_code=201)
def create_signal(
    request: Request,
    response: Response,
    body: SignalCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> SignalOut:
    """Record a signal from a DLP tool, a guardrail, a vendor status feed, an evaluation job.
    A system that is not in the inventory is kept as unregistered (`unregistered: true`).
    With an `Idempotency-Key`, a retry is answered the signal of the first request
    (`Idempotent-Replayed: true`) and stores nothing."""
    key = _idempotency(idempotency_key, route="signals", body=body)
    row = service.replay(session, idempotency=key, actor=principal) if key else None
    if row is not None:
        response.headers[REPLAYED_HEADER] = "true"
    else:
        row = service.create_signal(session, data=body, actor=principal, idempotency=key)
    audit_object(request, f"signal:{row.id}")
    return service.to_out(row)


@router.get("/signals/{signal_id}", response_model=SignalOut)
def get_signal(signal_id: SignalId, session: SessionDep, principal: PrincipalDep) -> SignalOut:
    return service.to_out(service.get_signal(session, signal_id=signal_id, principal=principal))


@router.post("/reports", response_model=ReportOut, status_code=201)
def create_report(
    request: Request,
    response: Response,
    body: ReportCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> ReportOut:
    """Report a suspicious output of an AI system, without having to classify it. Every role
    may report; the answer carries a reference such as `RPT-000123`. With an
    `Idempotency-Key`, as `POST /signals`."""
    key = _idempotency(idempotency_key, route="reports", body=body)
    row = service.replay(session, idempotency=key, actor=principal) if key else None
    if row is not None:
        response.headers[REPLAYED_HEADER] = "true"
    else:
        row = service.create_report(session, data=body, actor=principal, idempotency=key)
    audit_object(request, f"signal:{row.id}")
    return service.report_answer(row)


@router.post("/ingest/alertmanager", response_model=IngestResult)
def ingest_alertmanager(
    request: Request, body: alertmanager.Payload, session: SessionDep, principal: PrincipalDep
) -> IngestResult:
    """Prometheus Alertmanager's webhook receiver (payload version 4): each alert becomes a
    signal, its resolution resolves that signal."""
    result = service.ingest_alertmanager(session, payload=body, actor=principal)
    if result.signals:
        audit_object(request, ("signal:" + ",".join(map(str, result.signals)))[:300])
    return result
