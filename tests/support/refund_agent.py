"""The refund agent example (examples/refund_agent) in a process of its own, asked over its
standard input and answering on its standard output."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT
from tests.support.containment_live import WAIT

EXAMPLE = ROOT / "examples" / "refund_agent"


class Agent:
    """The agent, run by `python` (default: this interpreter)."""

    def __init__(
        self, url: str, token: str, env: dict[str, str], *extra: str, python: str = sys.executable
    ) -> None:
        self.proc = subprocess.Popen(
            [python, str(EXAMPLE / "agent.py"), "--url", url, "--token", token, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)

    def ask(self, request: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        if not self.selector.select(timeout=WAIT):
            raise AssertionError(f"the agent did not answer {request!r}")
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.selector.close()
        if self.proc.stdout:
            self.proc.stdout.close()
