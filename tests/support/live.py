"""A real HTTP server for tests whose clients must speak over a socket (OTLP exporters,
Alertmanager, the openai client), and the ports such servers listen on.

Under pytest-xdist each worker takes its ports from a block of its own, below the kernel's
range of ephemeral ports: no other worker, and no outgoing connection, can take one, not
even while a test has stopped its server to start it again on the same port."""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

STARTUP = 180.0
"""Seconds a server may take to answer after its start: a ceiling for a loaded machine, not
an expectation; the waits end as soon as the server is ready."""
PORTS_FROM = 20_000
"""The first port of the first worker's block."""
PORTS_PER_WORKER = 500


def worker_index() -> int:
    """This pytest-xdist worker's number (gw3: 3); 0 without xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            return int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _worker_ports() -> Iterator[int]:
    """This worker's ports, each once, from a point in its block that differs between runs
    (two test runs on one machine at once rarely meet), round the block."""
    blocks = max(1, (_ephemeral_start() - PORTS_FROM) // PORTS_PER_WORKER)
    first = PORTS_FROM + (worker_index() % blocks) * PORTS_PER_WORKER
    start = random.SystemRandom().randrange(PORTS_PER_WORKER)
    for offset in itertools.cycle(range(PORTS_PER_WORKER)):
        yield first + (start + offset) % PORTS_PER_WORKER


_PORTS = _worker_ports()
_PORTS_LOCK = threading.Lock()


def free_port() -> int:
    """A localhost port of this worker's block that nothing listens on now, and that this
    process has not handed out before (until the block is used up)."""
    with _PORTS_LOCK:
        for _ in range(PORTS_PER_WORKER):
            port = next(_PORTS)
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError(f"no free port in this worker's block (from {PORTS_FROM})")


def wait_until(
    what: str, ready: Callable[[], bool], *, ceiling: float = STARTUP, every: float = 0.02
) -> None:
    """Poll `ready()` until it is true; fail naming `what` after `ceiling` seconds. `ready`
    may raise to fail at once (a server that exited)."""
    deadline = time.monotonic() + ceiling
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {ceiling:.0f} s")
        time.sleep(every)


def answers(port: int) -> bool:
    """Whether something accepts connections on the localhost port."""
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def serve(app: Any, *, timeout: float = STARTUP) -> Iterator[str]:
    """Run `app` with uvicorn on a free localhost port in a thread; yield its base URL once
    the port answers (`timeout`: the ceiling of that wait)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def ready() -> bool:
        if not thread.is_alive():
            raise RuntimeError(f"the test server on port {port} did not start")
        return server.started and answers(port)

    try:
        wait_until("the test server to start", ready, ceiling=timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
