"""Whether a system's GenAI model calls arrive with their content (part of the telemetry
service).

Most GenAI instrumentations leave prompts and outputs out of their spans unless told to put
them in. Such spans are stored and counted, but the detectors, which read the content, see
nothing in them, and nothing said so. Ingest therefore looks, per batch and per system, at
the model calls (`MODEL_CALLS`): content in any of them is `on`, none in all of them is
`off`. The state is kept per system in `content_capture` (no row: `unknown`, no model call
seen yet), written only when it changes; this process remembers what it last saw and read
per database, so a batch whose state is the known one costs no query (`RECHECK_SECONDS`
bounds how stale that memory may be when several server processes share the database).

Turning `off` under a content policy that wants the content (`NEEDS_CONTENT`: every policy,
`hashes` included, since a hash is of the content and the detectors read the content as
sent) raises one warning signal, `content_capture_off`, whose text says how to turn capture
on; turning `on` again resolves it, so a later loss raises a new one.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.pipeline import SignalsRaised, SignalsResolved
from blastwall.signals.models import Signal
from blastwall.signals.schemas import SignalStatus
from blastwall.telemetry.models import ContentCapture
from blastwall.telemetry.schemas import ContentCaptureOut

__all__ = [
    "CAPTURE_HINT",
    "CAPTURE_SETTINGS",
    "MODEL_CALLS",
    "NEEDS_CONTENT",
    "observe",
    "remember",
    "seen_in",
    "state_of",
]

log = logging.getLogger("blastwall.telemetry")

MODEL_CALLS = frozenset({"chat", "text_completion", "generate_content"})
"""Operations whose spans carry prompts and outputs when the instrumentation captures them
(embeddings, tool and agent spans may lack content for other reasons)."""
NEEDS_CONTENT = frozenset({"full", "redacted", "hashes"})
"""Content policies under which spans without content are a problem worth a signal."""
RECHECK_SECONDS = 60.0
"""How long this process trusts the state it last wrote or read before reading it again."""
SOURCE = "telemetry"
KIND = "content_capture_off"
TABLE: Table = ContentCapture.metadata.tables["content_capture"]

CAPTURE_SETTINGS: dict[str, dict[str, str]] = {
    "opentelemetry-instrumentation-openai-v2": {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only",
    },
    "openllmetry": {"TRACELOOP_TRACE_CONTENT": "true"},
    "openinference": {
        "OPENINFERENCE_HIDE_INPUTS": "false",
        "OPENINFERENCE_HIDE_OUTPUTS": "false",
        "OPENINFERENCE_HIDE_INPUT_MESSAGES": "false",
        "OPENINFERENCE_HIDE_OUTPUT_MESSAGES": "false",
        "OPENINFERENCE_HIDE_INPUT_TEXT": "false",
        "OPENINFERENCE_HIDE_OUTPUT_TEXT": "false",
    },
}
"""The environment of the instrumented application that puts content on the spans."""
CAPTURE_HINT = (
    "Turn content capture on in the application's instrumentation. OpenTelemetry "
    "openai-v2: OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental and "
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only (or span_and_event; "
    "'true' without the opt-in writes the content to log events, which Blastwall does not "
    "receive). OpenLLMetry (Traceloop): TRACELOOP_TRACE_CONTENT=true. OpenInference: "
    "OPENINFERENCE_HIDE_INPUTS, OPENINFERENCE_HIDE_OUTPUTS, OPENINFERENCE_HIDE_INPUT_MESSAGES, "
    "OPENINFERENCE_HIDE_OUTPUT_MESSAGES, OPENINFERENCE_HIDE_INPUT_TEXT and "
    "OPENINFERENCE_HIDE_OUTPUT_TEXT unset or false (or the same in its TraceConfig). "
    "Blastwall applies the system's content policy before anything is stored."
)

# Per database (the engine, or in tests the connection, a session is bound to): system id
# to (state, time.monotonic() of when this process wrote or read it).
_known: weakref.WeakKeyDictionary[Any, dict[str, tuple[str, float]]] = weakref.WeakKeyDictionary()


def seen_in(records: Iterable[dict[str, Any]]) -> dict[str, bool]:
    """Per registered system with model calls among `records`: whether any of them carries
    content. One pass; a system found with content costs one lookup a span after that."""
    seen: dict[str, bool] = {}
    for record in records:
        system_id = record["system_id"]
        if system_id is None or seen.get(system_id) or record["operation"] not in MODEL_CALLS:
            continue
        seen[system_id] = bool(
            record["input_messages"] or record["output_messages"] or record["system_instructions"]
        )
    return seen


def observe(
    session: Session, *, seen: dict[str, bool], policy: Callable[[str], str], now: datetime
) -> dict[str, str]:
    """Bring the stored states in line with what a batch showed (`seen_in`), in the caller's
    transaction; raise or resolve the warning where a state changes. Answers the states to
    `remember` once the transaction is committed."""
    if not seen:
        return {}
    known = _known.get(session.get_bind(), {})
    clock = time.monotonic()
    checked: dict[str, str] = {}
    for system_id, content in seen.items():
        state = "on" if content else "off"
        last = known.get(system_id)
        if last is not None and last[0] == state and clock - last[1] < RECHECK_SECONDS:
            continue
        if _store(session, system_id=system_id, state=state, now=now):
            if state == "off" and policy(system_id) in NEEDS_CONTENT:
                _warn(session, system_id=system_id, policy=policy(system_id), now=now)
            elif state == "on":
                _clear(session, system_id=system_id, now=now)
        checked[system_id] = state
    return checked


def remember(session: Session, states: dict[str, str]) -> None:
    """Note the states `observe` stored or found (call it once they are committed)."""
    if states:
        clock = time.monotonic()
        known = _known.setdefault(session.get_bind(), {})
        known.update((system_id, (state, clock)) for system_id, state in states.items())


def state_of(session: Session, *, system_id: str) -> ContentCaptureOut:
    """The system's content capture state as the API and the CLI show it."""
    row = session.get(ContentCapture, system_id)
    if row is None:
        return ContentCaptureOut(state="unknown", since=None, hint=None)
    off = row.state == "off"
    return ContentCaptureOut(
        state="off" if off else "on", since=row.changed_at, hint=CAPTURE_HINT if off else None
    )


def _store(session: Session, *, system_id: str, state: str, now: datetime) -> bool:
    """Store the state; answer whether this call changed it (False when it was stored
    already, by an earlier batch or by another server process at the same time)."""
    current = session.scalar(
        select(ContentCapture.state).where(ContentCapture.system_id == system_id)
    )
    if current == state:
        return False
    # RETURNING says whether a row was written (psycopg gives no rowcount for the INSERT).
    table = TABLE
    if current is None:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        insert = (
            dialect.insert(table)
            .values(system_id=system_id, state=state, changed_at=now)
            .on_conflict_do_nothing(index_elements=["system_id"])
            .returning(table.c.system_id)
        )
        if session.execute(insert).first() is not None:
            return True
    changed = session.execute(
        update(table)
        .where(table.c.system_id == system_id, table.c.state != state)
        .values(state=state, changed_at=now)
        .returning(table.c.system_id)
    )
    return changed.first() is not None


def _fingerprint(system_id: str) -> str:
    return f"{KIND}:{system_id}"[:200]


def _firing(session: Session, system_id: str) -> list[Signal]:
    return list(
        session.scalars(
            select(Signal).where(
                Signal.source == SOURCE,
                Signal.fingerprint == _fingerprint(system_id),
                Signal.status == "firing",
            )
        )
    )


def _warn(session: Session, *, system_id: str, policy: str, now: datetime) -> None:
    if _firing(session, system_id):
        return
    log.warning(
        "GenAI model calls of %s arrive without prompts or outputs; its content policy is %s",
        system_id,
        policy,
    )
    signal = Signal(
        source=SOURCE,
        kind=KIND,
        system_id=system_id,
        archetype=None,
        severity="warning",
        status="firing",
        summary=f"GenAI model calls of '{system_id}' arrive without prompts or outputs, though "
        f"its content policy is '{policy}': the detectors cannot see what goes in or out. "
        + CAPTURE_HINT,
        attributes={"content_policy": policy, "settings": CAPTURE_SETTINGS},
        fingerprint=_fingerprint(system_id),
        starts_at=now,
        created_by=SOURCE,
        created_at=now,
        updated_at=now,
    )
    session.add(signal)
    pipeline.publish(session, SignalsRaised(signals=[signal], now=now))


def _clear(session: Session, *, system_id: str, now: datetime) -> None:
    firing = _firing(session, system_id)
    for signal in firing:
        signal.status = SignalStatus.resolved
        signal.ends_at = now
        signal.updated_at = now
    if firing:
        log.info("GenAI model calls of %s carry content again", system_id)
        pipeline.publish(session, SignalsResolved(signals=firing, now=now))
