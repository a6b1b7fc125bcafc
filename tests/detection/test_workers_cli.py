"""`blastwall workers`: the running server's detection workers, one by one, through
`GET /api/v1/detection/workers` (admin). The workers open the database by its URL, so these
tests use the committed database of tests/support/workers.py."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from blastwall.api import create_app
from blastwall.auth import service as auth_service
from blastwall.auth.roles import Role
from blastwall.cli import app as cli_app
from blastwall.db import Database, utcnow
from blastwall.detection import workers as workers_module
from blastwall.detection.workers import DetectionWorkers
from blastwall.errors import AuthenticationRequired, PermissionDenied, Unavailable
from blastwall.settings import Settings
from tests.support.live import serve
from tests.support.otlp_json import document, span
from tests.support.workers import INJECTION, database, until

__all__ = ["database"]  # the fixture, shared


def token(db: Database, role: Role) -> str:
    with db.transaction() as session:
        _, secret = auth_service.create_token(
            session, name=f"{role.value}-ops", role=role, created_by="test"
        )
    return secret


@pytest.fixture
def server(
    database: tuple[Database, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, FastAPI, str]]:
    """A live server with one detection worker: its URL, its app and an admin token."""
    db, _ = database
    monkeypatch.setattr(workers_module, "REVIVE_AFTER", 0.0)
    application = create_app(db, Settings(detection_workers=1))
    workers = application.state.detection
    assert isinstance(workers, DetectionWorkers)
    workers.start()  # the live server runs without its lifespan
    try:
        with serve(application) as url:
            yield url, application, token(db, Role.admin)
    finally:
        assert workers.stop(30)


def workers_cli(cli: CliRunner, url: str, secret: str | None, *args: str) -> Any:
    env = {"BLASTWALL_TOKEN": secret} if secret else {}
    return cli.invoke(cli_app, ["workers", "--url", url, *args], env=env)


def shown(cli: CliRunner, url: str, secret: str) -> dict[str, Any]:
    result = workers_cli(cli, url, secret, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    status: dict[str, Any] = orjson.loads(result.stdout)
    return status


def test_workers_shows_each_worker_from_the_running_server(
    cli: CliRunner, server: tuple[str, FastAPI, str]
) -> None:
    url, application, secret = server
    workers: DetectionWorkers = application.state.detection
    body = document("support-chatbot", [span(INJECTION)])
    sent = httpx.post(
        f"{url}/v1/traces", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert sent.status_code == 200, sent.text
    status = until(lambda: (s := shown(cli, url, secret))["workers"][0]["done"] == 1 and s)
    assert status["mode"] == "workers" and status["server_pid"] == os.getpid()
    (worker,) = status["workers"]
    assert worker["pid"] == workers.pids()[0] and worker["alive"] is True
    assert (worker["queued"], worker["signals"], worker["restarts"]) == (0, 1, 0)
    assert worker["last_error"] is None and worker["started_at"]
    assert status["totals"]["done"] == 1

    table = workers_cli(cli, url, secret)
    assert table.exit_code == 0, table.output
    assert str(worker["pid"]) in table.stdout and "yes" in table.stdout

    # A batch the worker cannot run: its error is the worker's last.
    workers.submit([{"system_id": "support-chatbot"}], now=utcnow())
    failed = until(lambda: (s := shown(cli, url, secret))["workers"][0]["done"] == 2 and s)
    assert failed["workers"][0]["last_error"].startswith("KeyError")
    assert "KeyError" in workers_cli(cli, url, secret).stdout

    # A worker that dies is started again: a new pid, one restart, its death the last error.
    os.kill(worker["pid"], signal.SIGKILL)
    revived = until(
        lambda: (
            (s := shown(cli, url, secret))["workers"][0]["restarts"] == 1
            and s["workers"][0]["alive"]
            and s
        ),
        timeout=30,
    )
    again = revived["workers"][0]
    assert again["pid"] != worker["pid"] and again["done"] == 2
    assert again["last_error"].startswith("exited with code -9")


def test_workers_needs_an_admin_token(
    cli: CliRunner, server: tuple[str, FastAPI, str], database: tuple[Database, str]
) -> None:
    url, _, _ = server
    refused = workers_cli(cli, url, token(database[0], Role.responder))
    assert refused.exit_code == 1 and isinstance(refused.exception, PermissionDenied)
    assert "403" in str(refused.exception) and "admin" in str(refused.exception)
    missing = workers_cli(cli, url, None)
    assert missing.exit_code == 1 and isinstance(missing.exception, AuthenticationRequired)
    assert "BLASTWALL_TOKEN" in str(missing.exception)
    wrong = workers_cli(cli, url, "bw_not-a-token")
    assert wrong.exit_code == 1 and isinstance(wrong.exception, AuthenticationRequired)


def test_workers_says_when_there_are_none_or_no_server(
    cli: CliRunner, database: tuple[Database, str]
) -> None:
    db, _ = database
    secret = token(db, Role.admin)
    with serve(create_app(db, Settings(detection_workers=0))) as url:
        inline = workers_cli(cli, url, secret)
        assert inline.exit_code == 0, inline.output
        assert "runs the detectors in the ingest request" in inline.stdout
        assert shown(cli, url, secret)["workers"] == []
    gone = workers_cli(cli, url, secret)
    assert gone.exit_code == 1 and isinstance(gone.exception, Unavailable)
    assert f"No Blastwall server answers at {url}" in str(gone.exception)
