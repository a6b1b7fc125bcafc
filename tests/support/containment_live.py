"""A real Blastwall installation for end-to-end containment tests: `blastwall serve` in a
process of its own, which a test can kill and start again on the same port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import httpx
from typer.testing import CliRunner

from blastwall.cli import app
from blastwall.settings import get_settings
from tests.conftest import ROOT
from tests.support.live import STARTUP, free_port, wait_until

WAIT = 60.0
"""Seconds, at most, for anything to happen: a ceiling for a loaded machine; the waits end
as soon as it has happened."""


def wait_for(what: str, check: object, timeout: float = WAIT) -> None:
    """Poll `check()` until it is true; fail naming `what` after `timeout` seconds."""
    assert callable(check)
    wait_until(f"waiting for {what}", check, ceiling=timeout)


class Installation:
    """A data dir with the database set up, and its server (started with `start`)."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BLASTWALL_")}
        self.env.update(
            BLASTWALL_DATA_DIR=str(tmp / "data"),
            BLASTWALL_CONTAINMENT_POLL_INTERVAL="0.2",
            BLASTWALL_CONTAINMENT_HEARTBEAT="1",
            PYTHONPATH=os.pathsep.join(
                [str(ROOT / "src"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.cli("init")

    def cli(self, *args: str) -> str:
        """Run a `blastwall` command in this process (not the server's), on this data dir."""
        env = {k: v for k, v in self.env.items() if k.startswith("BLASTWALL_")}
        get_settings.cache_clear()
        try:
            done = CliRunner().invoke(app, list(args), env=env)
        finally:
            get_settings.cache_clear()
        assert done.exit_code == 0, f"blastwall {' '.join(args)}: {done.output}"
        return done.stdout

    def token(self, name: str, role: str) -> str:
        return self.cli("token", "create", "--name", name, "--role", role).splitlines()[0]

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blastwall.cli", "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.dir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log.read_text()[-2000:]}")
            try:
                return httpx.get(f"{self.url}/api/v1/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the server to start", healthy, timeout=STARTUP)

    def kill(self) -> None:
        """Stop the server the hard way (no goodbye to its clients)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> Installation:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
