"""A real Prometheus Alertmanager in front of a real Blastwall server, for the end-to-end
tests of the webhook receiver. Needs the `alertmanager` binary (Debian: package
prometheus-alertmanager); the fixture skips its test without it."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from blastwall.api import create_app
from blastwall.auth import service as auth_service
from blastwall.auth.roles import Role
from blastwall.db import Database, make_engine
from blastwall.inventory import service as inventory_service
from blastwall.inventory.loader import load_path
from blastwall.migrate import upgrade
from blastwall.settings import Settings
from tests.conftest import EXAMPLES
from tests.support.live import STARTUP, free_port

WAIT = 60.0  # seconds, at most, for anything to happen (a ceiling: the waits end sooner)


def _alertmanager_binary() -> str | None:
    for candidate in (
        os.environ.get("BLASTWALL_TEST_ALERTMANAGER"),
        shutil.which("prometheus-alertmanager"),
        shutil.which("alertmanager"),
        "/usr/bin/prometheus-alertmanager",
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = WAIT, log: Path | None = None
) -> Any:
    """Call `check` until it answers something truthy; fail after `timeout` seconds, showing
    the end of `log`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-6000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}\n{tail}")


@dataclass(frozen=True)
class Blastwall:
    url: str
    token: str


@pytest.fixture
def blastwall(tmp_path: Path) -> Iterator[Blastwall]:
    """The Blastwall API on a free localhost port, on a fresh SQLite database holding the
    example inventory and a responder token for Alertmanager."""
    engine = make_engine(f"sqlite:///{tmp_path / 'blastwall.db'}")
    upgrade(engine)
    db = Database(engine)
    with db.transaction() as session:
        specs = [i.spec for i in load_path(EXAMPLES)]
        inventory_service.apply_specs(session, specs=specs, actor="e2e")
        _, token = auth_service.create_token(
            session, name="alertmanager", role=Role.responder, created_by="e2e"
        )
    port = free_port()
    app = create_app(db, Settings(data_dir=tmp_path))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
        http="h11",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="blastwall-api", daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for("the Blastwall API", lambda: server.started, timeout=STARTUP)
        assert httpx.get(f"{url}/api/v1/health", timeout=WAIT).status_code == 200
        yield Blastwall(url, token)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        engine.dispose()
    assert not thread.is_alive(), "the API server did not stop"


ALERTMANAGER_YML = """\
route:
  receiver: blastwall
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: blastwall
    webhook_configs:
      - url: {url}/api/v1/ingest/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


@dataclass(frozen=True)
class Alertmanager:
    url: str
    log: Path


@pytest.fixture
def alertmanager(tmp_path: Path, blastwall: Blastwall) -> Iterator[Alertmanager]:
    """A real Alertmanager whose only receiver is Blastwall's webhook; its URL."""
    binary = _alertmanager_binary()
    if binary is None:
        pytest.skip(
            "Alertmanager not found: install the Debian package prometheus-alertmanager, put "
            "`alertmanager` on PATH, or set BLASTWALL_TEST_ALERTMANAGER to the binary"
        )
    config = tmp_path / "alertmanager.yml"
    config.write_text(ALERTMANAGER_YML.format(url=blastwall.url, token=blastwall.token))
    port = free_port()
    log_path = tmp_path / "alertmanager.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"Alertmanager exited ({process.returncode}):\n{log_path.read_text()}")
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

        wait_for("Alertmanager to be ready", ready, timeout=STARTUP, log=log_path)
        yield Alertmanager(url, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
