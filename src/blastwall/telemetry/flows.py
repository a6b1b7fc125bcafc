"""Ingest: the spans of a request stored, and handed on to detection.

Ingest writes every span of a request in one transaction, one bulk write per table
(`telemetry.store`): a GenAI span becomes an interaction, any other span a context span of
its trace. The request is answered only after the commit, so an acknowledged span is a
stored span.

A span is stored once: one whose trace id and span id are stored already for its system (an
exporter's retry of a batch whose answer it never received) is accepted and acknowledged,
but left out by the database's unique index, and the detectors do not see it again. Spans of
no known system count as one system for this.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.db import after_commit, utcnow
from blastwall.pipeline import SignalsRaised, SpansStored
from blastwall.signals.models import Signal
from blastwall.telemetry import capture, service
from blastwall.telemetry.models import SPAN_KEY
from blastwall.telemetry.normalise import normalise, trim_attributes
from blastwall.telemetry.otlp import Decoded, DecodedSpan
from blastwall.telemetry.redact import apply_content_policy
from blastwall.telemetry.store import insert_rows

__all__ = ["ingest"]

log = logging.getLogger("blastwall.telemetry")


def _context_row(
    span: DecodedSpan, *, system_id: str | None, named: str | None, now: datetime
) -> dict[str, Any]:
    """A span that is not a GenAI call, as a context span of its trace."""
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "system_id": system_id,
        "service_name": named,
        "name": span.name[:500],
        "kind": span.kind,
        "status_code": span.status_code,
        "start_time": service.ns(span.start_ns),
        "end_time": service.ns(span.end_ns),
        "attributes": trim_attributes(span.attributes),
        "received_at": now,
    }


def _stored_row(
    record: dict[str, Any], policy: str, *, named: str | None, now: datetime
) -> dict[str, Any]:
    """An interaction as stored: its content under the system's content policy."""
    if policy != "full":
        record = apply_content_policy(record, policy)
    record["service_name"] = (record.get("service_name") or named or "")[:200] or None
    record["name"] = record["name"][:500]
    record["content_policy"] = policy
    record["received_at"] = now
    return record


def ingest(
    session: Session,
    *,
    decoded: Decoded,
    key_system: str | None = None,
    detection: object | None = None,
) -> service.IngestResult:
    """Store the decoded spans in the caller's transaction; answer what was kept and
    refused. The interactions stored now go on to detection (`SpansStored`), with
    `detection`, the process's detection engine or workers (None: none): an engine detects
    in this transaction, workers once it is committed. Only the interactions stored now are
    looked at: a span resent is acknowledged, not stored or detected again."""
    result = service.IngestResult(rejected=decoded.rejected, errors=list(decoded.errors))
    names = service.directory(session)
    now = utcnow()
    sent: list[dict[str, Any]] = []  # each interaction as sent, for the detectors
    interactions: list[dict[str, Any]] = []
    context: list[dict[str, Any]] = []
    mismatched = 0
    for span in decoded.spans:
        system_id, named = names.resolve(span)
        if key_system is not None:
            explicit = span.resource.get(service.SYSTEM_ATTRIBUTE)
            if isinstance(explicit, str) and explicit != key_system:
                mismatched += 1
                continue
            system_id = key_system
        elif system_id is None:
            result.unregistered.add(named or "(no service.name)")
        record = normalise(span)
        if record is None:
            context.append(_context_row(span, system_id=system_id, named=named, now=now))
            continue
        record["system_id"] = system_id
        sent.append(record)  # detectors read the content as sent; the policy makes a copy
        interactions.append(_stored_row(record, names.policy(system_id), named=named, now=now))
    if mismatched:
        result.rejected += mismatched
        result.errors.append(
            f"{mismatched} span(s) name another system in {service.SYSTEM_ATTRIBUTE} than the "
            f"ingest key's ({key_system}); send them with that system's key"
        )
    connection = session.connection()
    stored = insert_rows(connection, service.INTERACTIONS, interactions, unique=SPAN_KEY)
    stored_context = insert_rows(connection, service.CONTEXT_SPANS, context, unique=SPAN_KEY)
    if len(stored) < len(interactions):  # resent: the detectors saw those the first time
        sent = [sent[i] for i in stored]
    if result.unregistered:
        _report_unregistered(session, result.unregistered, now)
    # Per system, once a batch: did its model calls carry content? (`telemetry.capture`)
    captured = capture.observe(
        session, seen=capture.seen_in(interactions), policy=names.policy, now=now
    )
    if sent and detection is not None:
        found = pipeline.publish(session, SpansStored(records=sent, now=now, detection=detection))
        result.signals = sum(n for n in found if isinstance(n, int))
    if captured:  # most batches change no state: nothing to note after the commit
        after_commit(session, lambda: capture.remember(session, captured))
    result.interactions = len(stored)
    result.context_spans = len(stored_context)
    result.accepted = len(interactions) + len(context)
    result.duplicates = result.accepted - len(stored) - len(stored_context)
    return result


def _report_unregistered(session: Session, names: set[str], now: datetime) -> None:
    """Raise one signal per AI service seen that the inventory does not know (shadow AI)."""
    fingerprints = {f"unregistered:{n}"[:200]: n for n in names}
    known = set(
        session.scalars(
            select(Signal.fingerprint).where(
                Signal.source == "telemetry",
                Signal.fingerprint.in_(fingerprints),
                Signal.status == "firing",
            )
        )
    )
    raised = []
    for fingerprint, name in fingerprints.items():
        if fingerprint in known:
            continue
        log.warning("telemetry from an AI service not in the inventory: %s", name)
        signal = Signal(
            source="telemetry",
            kind="unregistered_system",
            system_id=None,
            system_ref=name[:200],
            archetype="unauthorised_use",
            severity="warning",
            status="firing",
            summary=f"Telemetry from '{name}', which is not in the inventory. Register it "
            "(blastwall inventory apply) or find out who runs it.",
            attributes={"service_name": name},
            fingerprint=fingerprint,
            starts_at=now,
            created_by="telemetry",
            created_at=now,
            updated_at=now,
        )
        session.add(signal)
        raised.append(signal)
    if raised:
        pipeline.publish(session, SignalsRaised(signals=raised, now=now))
