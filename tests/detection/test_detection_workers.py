"""Detection in worker processes (BLASTWALL_DETECTION_WORKERS >= 1): the OTLP request is
answered once its spans are stored, and a worker process runs the detectors and stores the
signals. The workers read the database from its URL, so these tests use a database of
their own that is committed to, not the rolled-back one of the other tests."""

from __future__ import annotations

import os
import signal
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from blastwall.api import create_app
from blastwall.auth import service as auth_service
from blastwall.auth.roles import Role
from blastwall.db import Database
from blastwall.detection import workers as workers_module
from blastwall.detection.workers import DetectionWorkers
from blastwall.settings import Settings
from blastwall.signals.models import Signal
from blastwall.telemetry.flows import ingest
from blastwall.telemetry.otlp import decode_json
from blastwall.wiring import install as install_pipeline
from tests.support.otlp_json import document, span
from tests.support.workers import INJECTION, database, until

__all__ = ["database"]  # the fixture, shared


def detector_signals(db: Database) -> list[Signal]:
    with db.session(read_only=True) as session:
        return list(session.scalars(select(Signal).where(Signal.source == "detector")))


def test_the_server_answers_and_a_worker_stores_the_signal(
    database: tuple[Database, str],
) -> None:
    db, _ = database
    with db.transaction() as session:
        _, secret = auth_service.create_token(
            session, name="alice", role=Role.admin, created_by="test"
        )
    headers = {"Authorization": f"Bearer {secret}"}
    app = create_app(db, Settings(detection_workers=1))
    workers = app.state.detection
    assert isinstance(workers, DetectionWorkers)
    with TestClient(app) as client:  # the lifespan starts the worker and stops it
        answer = client.post(
            "/v1/traces", json=document("support-chatbot", [span(INJECTION)]), headers=headers
        )
        assert answer.status_code == 200, answer.text
        signals = until(
            lambda: client.get(
                "/api/v1/signals", params={"detector": "prompt_injection"}, headers=headers
            ).json()["items"]
        )
        (found,) = signals
        assert found["kind"] == "prompt_injection" and found["system_id"] == "support-chatbot"
        (interaction_id,) = found["interaction_ids"]
        stored = client.get(f"/api/v1/interactions/{interaction_id}", headers=headers).json()
        assert "Ignore all previous instructions" in str(stored["input_messages"])
        detectors = client.get("/api/v1/detectors", headers=headers).json()
        assert {d["id"]: d["failures"] for d in detectors}["prompt_injection"] == 0
        status = client.get("/api/v1/detection", headers=headers).json()
        assert status["mode"] == "workers" and status["workers"]["workers"] == 1
    status = workers.status()
    assert status["running"] == 0 and status["pending"] == 0
    assert status["done"] == status["submitted"] == 1 and status["signals"] == 1


def test_a_full_queue_drops_and_a_dead_worker_is_started_again(
    database: tuple[Database, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, url = database
    monkeypatch.setattr(workers_module, "SUBMIT_TIMEOUT", 0.05)
    monkeypatch.setattr(workers_module, "REVIVE_AFTER", 0.0)
    workers = DetectionWorkers(1, url, queue_batches=1, setup=install_pipeline)
    workers.start()

    def send(trace: str) -> None:
        body = document("support-chatbot", [span(INJECTION, trace_id=trace * 32)])
        with db.transaction() as session:
            ingest(session, decoded=decode_json(orjson.dumps(body)), detection=workers)

    try:
        room = workers._workers[0].room
        assert room.acquire(timeout=1)  # the one slot taken: the worker is "behind"
        send("a")
        assert workers.status()["dropped"] == 1 and workers.status()["submitted"] == 0
        room.release()

        first = workers.pids()[0]
        os.kill(first, signal.SIGKILL)
        until(lambda: workers.pids() and workers.pids()[0] != first, timeout=30)
        send("b")
        assert workers.wait(60)
        (found,) = until(lambda: detector_signals(db))
        assert found.kind == "prompt_injection" and found.trace_id == "b" * 32
    finally:
        assert workers.stop(30)
    assert workers.status()["done"] == 1


def test_a_batch_crosses_the_pipe_as_it_was_made() -> None:
    """JSON where it can carry the records (start_time a datetime again), a pickle where it
    cannot (bytes in attributes): the worker makes the same items either way."""
    from datetime import UTC, datetime

    from blastwall.detection.items import item_from_record
    from blastwall.detection.workers import decode_batch, encode_batch
    from blastwall.telemetry.normalise import normalise

    now = datetime(2026, 11, 30, 12, 0, 1, 250_000, tzinfo=UTC)
    decoded = decode_json(orjson.dumps(document("support-bot", [span(INJECTION)])))
    records = [r for r in (normalise(s) for s in decoded.spans) if r is not None]
    assert records
    for record in records:
        record["system_id"] = "support-chatbot"
    data = encode_batch(records, now)
    assert data[:1] == b"J"
    back, when = decode_batch(data)
    assert when == now
    assert [r["start_time"] for r in back] == [r["start_time"] for r in records]
    for before, after in zip(records, back, strict=True):
        assert vars_of(item_from_record(after)) == vars_of(item_from_record(before))
    records[0]["attributes"] = {"blob": b"\x00\x01"}
    data = encode_batch(records, now)
    assert data[:1] == b"P"
    back, when = decode_batch(data)
    assert back == records and when == now


def vars_of(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}
