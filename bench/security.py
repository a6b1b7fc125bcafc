#!/usr/bin/env python3
"""Security benchmark: the server's memory under large request bodies, with and without a
token, through a real `blastwall serve`.

For each backend (SQLite always; PostgreSQL when reachable) it sets up a fresh installation
(`init`, the example inventory, an admin token, one incident), starts `blastwall serve`, and
reads the server process's resident memory (VmRSS, and its peak VmHWM, from
/proc/PID/status) before and after each phase. Each phase sends `--parallel` requests at
once, each over a raw socket: the headers, then the body as fast as the server takes it,
until the server answers (or closes). A phase reports the answers, how much of each body
the client got to send before the answer (what the server may have read; the rest of the
figure is the kernel's socket buffers), and the server's memory after it.

    anonymous 30 MiB      POST /api/v1/incidents, no token, a JSON array of empty objects,
                          Content-Length 30 MiB (issue 18: 355 -> 1,126 MB before the gate)
    anonymous chunked     the same, chunked
    over JSON limit       the same, chunked, with an admin token (the route's limit: 1 MiB)
    over OTLP limit       POST /v1/traces, admin, 300 MiB chunked (limit 16 MiB)
    over upload limit     POST .../evidence/files, admin, 300 MiB chunked (limit 256 MiB;
                          `--upload-parallel` of them, default 1): the largest limit, whose
                          body the server holds in memory up to the limit

Memory figures are MB (10^6 bytes) of the server process alone (the detection workers are
processes of their own); "peak" is VmHWM, the highest RSS since the server started.

    python bench/security.py [--backends sqlite,postgresql] [--parallel 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    BenchError,
    base_env,
    blastwall,
    free_port,
    log,
    postgres_unreachable,
    prepare_postgres,
    stop,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/blastwall_bench"
MiB = 1024 * 1024
CHUNK = b"{}," * (64 * 1024 // 3)  # a piece of a JSON array of empty objects


@dataclass
class Phase:
    name: str
    requests: int
    answers: dict[str, int]
    sent_mib_max: float
    rss_before_mb: float
    rss_after_mb: float
    peak_mb: float
    seconds: float


def memory(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak, in MB (10^6 bytes)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024 / 1e6
    return fields["VmRSS"], fields["VmHWM"]


@contextmanager
def serve(env: dict[str, str], cwd: Path, log_path: Path) -> Any:
    """`blastwall serve` (one process) on a free port: answers its URL and process id."""
    port = free_port()
    command = [sys.executable, "-m", "blastwall.cli", "serve", "--port", str(port)]
    with log_path.open("w") as out:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", log_path, ceiling=60)
        yield port, proc.pid
    finally:
        stop(proc)


def pieces(size: int) -> Iterator[bytes]:
    """A JSON array of empty objects of `size` bytes or a little more, in pieces."""
    yield b"["
    sent = 1
    while sent < size - 3:
        yield CHUNK
        sent += len(CHUNK)
    yield b"{}]"


def send(
    port: int, path: str, headers: dict[str, str], size: int, chunked: bool
) -> tuple[str, int]:
    """One request whose body (a JSON array of about `size` bytes) is sent until the server
    answers; answers the status (or what ended the connection) and the body bytes sent."""
    if chunked:
        framing = {"Transfer-Encoding": "chunked"}
    else:
        framing = {"Content-Length": str(sum(map(len, pieces(size))))}
    lines = [f"{k}: {v}" for k, v in {**headers, **framing}.items()]
    head = "\r\n".join([f"POST {path} HTTP/1.1", "Host: bench", *lines]) + "\r\n\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), 60) as sock:
        sock.settimeout(600)
        sock.sendall(head.encode())
        try:
            for piece in pieces(size):
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            first = sock.recv(64)
        except (ConnectionResetError, TimeoutError) as exc:
            return type(exc).__name__, sent
    status = first.split(b" ")[1].decode() if first.startswith(b"HTTP/") else "closed"
    return status, sent


def phase(
    pid: int,
    port: int,
    name: str,
    path: str,
    headers: dict[str, str],
    size: int,
    chunked: bool,
    parallel: int,
) -> Phase:
    before, _ = memory(pid)
    start = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(
            pool.map(lambda _: send(port, path, headers, size, chunked), range(parallel))
        )
    seconds = time.monotonic() - start
    time.sleep(1.0)  # the server lets go of what it held
    after, peak = memory(pid)
    answers: dict[str, int] = {}
    for status, _ in results:
        answers[status] = answers.get(status, 0) + 1
    return Phase(
        name=name,
        requests=parallel,
        answers=answers,
        sent_mib_max=max(sent for _, sent in results) / MiB,
        rss_before_mb=before,
        rss_after_mb=after,
        peak_mb=peak,
        seconds=seconds,
    )


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"blastwall-security-{backend}-"))
    try:
        database_url = None
        if backend == "postgresql":
            prepare_postgres(args.postgres_url)
            database_url = args.postgres_url
        env = base_env(work / "data", database_url)
        blastwall(["init"], env, work)
        blastwall(["inventory", "apply", str(ROOT / "examples" / "inventory")], env, work)
        token = blastwall(["token", "create", "--name", "bench", "--role", "admin"], env, work)
        admin = {"Authorization": f"Bearer {token.strip()}"}
        with serve(env, work, work / "server.log") as (port, pid):
            made = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/incidents",
                json={"title": "bench", "archetype": "prompt_injection", "severity": "SEV3"},
                headers=admin,
                timeout=60,
            )
            if made.status_code != 201:
                raise BenchError(f"could not open an incident: {made.status_code} {made.text}")
            files = f"/api/v1/incidents/{made.json()['id']}/evidence/files?name=bench.bin"
            json_body = {"Content-Type": "application/json"}
            idle, idle_peak = memory(pid)
            n = args.parallel
            incidents = "/api/v1/incidents"
            protobuf = {"Content-Type": "application/x-protobuf"}
            plan = [  # name, path, headers, body size, chunked, requests at once
                ("anonymous 30 MiB", incidents, json_body, 30 * MiB, False, n),
                ("anonymous chunked", incidents, json_body, 30 * MiB, True, n),
                ("over JSON limit", incidents, {**admin, **json_body}, 30 * MiB, True, n),
                ("over OTLP limit", "/v1/traces", {**admin, **protobuf}, 300 * MiB, True, n),
                ("over upload limit", files, admin, 300 * MiB, True, args.upload_parallel),
            ]
            phases = [phase(pid, port, *step) for step in plan]
        return {
            "backend": backend,
            "idle_rss_mb": idle,
            "idle_peak_mb": idle_peak,
            "phases": [asdict(p) for p in phases],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--parallel", type=int, default=4, help="requests at once per phase")
    parser.add_argument(
        "--upload-parallel", type=int, default=1, help="over-limit uploads at once (256 MiB each)"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not Path("/proc/self/status").exists():
        log("this benchmark reads /proc/PID/status (Linux)")
        return 2
    results = []
    for backend in args.backends.split(","):
        if backend == "postgresql":
            why = postgres_unreachable(args.postgres_url)
            if why:
                log(f"postgresql: skipped ({why})")
                continue
        log(f"{backend}: ...")
        try:
            results.append(bench_backend(backend, args))
        except BenchError as exc:
            log(f"{backend}: could not run: {exc}")
            return 2
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"Blastwall security benchmark: server memory (MB) under large bodies, {args.parallel} "
        f"requests at once per phase; Python {platform.python_version()}"
    )
    for r in results:
        print()
        idle, peak = r["idle_rss_mb"], r["idle_peak_mb"]
        print(f"{r['backend']}: idle server {idle:.0f} MB (peak so far {peak:.0f})")
        print(
            f"  {'phase':<19} {'answers':<16} {'sent max MiB':>12} {'RSS before':>10} "
            f"{'RSS after':>9} {'peak':>6} {'seconds':>7}"
        )
        for p in r["phases"]:
            answers = ", ".join(f"{n}x {s}" for s, n in sorted(p["answers"].items()))
            print(
                f"  {p['name']:<19} {answers:<16} {p['sent_mib_max']:>12.1f} "
                f"{p['rss_before_mb']:>10.0f} {p['rss_after_mb']:>9.0f} {p['peak_mb']:>6.0f} "
                f"{p['seconds']:>7.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
