#!/usr/bin/env python3
"""Telemetry ingest benchmark: OTLP protobuf batches through a real `blastwall serve`.

For each backend (SQLite always; PostgreSQL when reachable) it sets up a fresh installation
(`init`, the example inventory with the bench's service names mapped to a system, an admin
token), starts `blastwall serve` pinned to one core (`taskset -c 0` when available), and
sends realistic ExportTraceServiceRequest batches (bench/decode.py `make_batches`: per five
spans two GenAI chat spans with 1-2 KB of message content, one tool span, two context spans)
from N concurrent clients on the other core. It reports spans per second decoded,
normalised and committed (a 200 from the receiver means committed), checks the stored
count against what was sent, and sets it beside the decode-alone rate measured in this
process on one core, so the ratio shows what normalising and storing cost.

Goals: at least 10,000 spans/s committed on SQLite from one server process, and the
end-to-end rate within 5x of the decode-alone rate.

  python bench/ingest.py [--backends sqlite,postgresql] [--batches 200] [--spans 500]
                         [--concurrency 4] [--content-policy full] [--no-detection] [--json]

`--no-detection` starts the server with BLASTWALL_DETECTION=false, so that the figures show
the ingest path alone (HTTP, decode, normalise, content policy, storage, commit). With
detection (the default) the server's detection worker processes are moved to the clients'
core, as they would run on a core of their own; `--detection-on-server-core` leaves them
sharing the server's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode import make_batches
from harness import (
    BenchError,
    base_env,
    blastwall,
    log,
    postgres_unreachable,
    prepare_postgres,
    server,
)

from blastwall.telemetry.otlp import decode_protobuf

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/blastwall_bench"
SERVICE_NAMES = ["support-bot-0", "support-bot-1", "support-bot-2"]  # as make_batches names them
GOAL_SQLITE = 10_000
GOAL_RATIO = 5.0


def decode_alone(bodies: list[bytes]) -> tuple[float, float]:
    """Spans per second and per CPU-second for protobuf decode with attribute extraction,
    each the best of three runs."""
    best = best_cpu = 0.0
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        spans = sum(len(decode_protobuf(body).spans) for body in bodies)
        best = max(best, spans / (time.perf_counter() - start))
        best_cpu = max(best_cpu, spans / max(time.process_time() - start_cpu, 1e-9))
    return best, best_cpu


def inventory(folder: Path, policy: str) -> Path:
    """The example inventory, with the bench's service names and policy on support-chatbot."""
    target = folder / "inventory"
    shutil.copytree(ROOT / "examples" / "inventory", target)
    path = target / "support-chatbot.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["telemetry"] = {"service_names": SERVICE_NAMES, "content_policy": policy}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def stored(database_url: str) -> int:
    from sqlalchemy import func, select

    from blastwall.db import make_engine
    from blastwall.telemetry.models import ContextSpan, Interaction

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            interactions = conn.scalar(select(func.count()).select_from(Interaction)) or 0
            context = conn.scalar(select(func.count()).select_from(ContextSpan)) or 0
            return int(interactions) + int(context)
    finally:
        engine.dispose()


def _processes() -> dict[int, tuple[int, float, bool]]:
    """Every process, read from /proc: pid -> (parent pid, CPU seconds (user + system),
    whether its command line says `serve`)."""
    stats: dict[int, tuple[int, float, bool]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        stats[int(stat.parent.name)] = (int(fields[1]), seconds, b"serve" in cmdline)
    return stats


def _servers(stats: dict[int, tuple[int, float, bool]]) -> set[int]:
    """The `blastwall serve` processes this process started."""
    return {pid for pid, (parent, _, serve) in stats.items() if parent == os.getpid() and serve}


def server_cpu() -> tuple[float, float]:
    """CPU seconds used so far by the `blastwall serve` this process started, and by that
    server's own child processes (its detection workers); (0.0, 0.0) where there is none.
    Beside the wall-clock rate it shows what the server itself spent, which other work on a
    shared machine does not inflate."""
    stats = _processes()
    servers = _servers(stats)
    server = sum(stats[pid][1] for pid in servers)
    helpers = sum(seconds for parent, seconds, _ in stats.values() if parent in servers)
    return server, helpers


def server_children() -> list[int]:
    """The process ids of the child processes (detection workers) of the `blastwall serve`
    this process started."""
    stats = _processes()
    servers = _servers(stats)
    return [pid for pid, (parent, _, _) in stats.items() if parent in servers]


def send(base: str, token: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    """Post every body from `concurrency` threads; answer wall time, latencies and errors."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"}
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    rejected = 0

    def worker() -> None:
        nonlocal rejected
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop()
                started = time.perf_counter()
                try:
                    answer = client.post(f"{base}/v1/traces", content=body, headers=headers)
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed * 1000)
                    if answer.status_code != 200:
                        errors.append(f"{answer.status_code}: {answer.text[:200]}")
                    else:
                        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                            ExportTraceServiceResponse,
                        )

                        reply = ExportTraceServiceResponse.FromString(answer.content)
                        rejected += reply.partial_success.rejected_spans

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0  # noqa: E731
    return {
        "wall_s": wall,
        "p50_ms": p(0.5),
        "p99_ms": p(0.99),
        "errors": errors,
        "rejected": rejected,
    }


def bench_backend(
    backend: str, args: argparse.Namespace, bodies: list[bytes], spans: int
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"blastwall-ingest-{backend}-"))
    try:
        database_url = None
        if backend == "postgresql":
            prepare_postgres(args.postgres_url)
            database_url = args.postgres_url
        env = base_env(work / "data", database_url)
        if args.no_detection:
            env["BLASTWALL_DETECTION"] = "false"
        blastwall(["init"], env, work)
        blastwall(["inventory", "apply", str(inventory(work, args.content_policy))], env, work)
        token = blastwall(
            ["token", "create", "--name", "bench", "--role", "admin"], env, work
        ).strip()
        url = database_url or f"sqlite:///{work / 'data' / 'blastwall.db'}"
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        prefix = ("taskset", "-c", "0") if shutil.which("taskset") else ()
        with server(env, work, work / "server.log", prefix=prefix) as base:
            # warm up on batches of their own: the same spans again would be acknowledged
            # but not stored (a resend), and the count below would come out short
            send(base, token, make_batches(2, args.spans, seed=1), 1)
            moved = False
            if prefix and not args.no_detection and not args.detection_on_server_core:
                # The detection workers are processes of their own: off the server's core,
                # onto the clients' (they inherited the server's taskset).
                for pid in server_children():
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(pid, os.sched_getaffinity(0))
                        moved = True
            before = stored(url)
            cpu_before, helpers_before = server_cpu()
            log(
                f"  sending {len(bodies)} batches ({spans} spans) from {args.concurrency} "
                "clients ..."
            )
            result = send(base, token, bodies, args.concurrency)
            cpu, helpers = server_cpu()
            cpu, helpers = cpu - cpu_before, helpers - helpers_before
            after = stored(url)
        result.update(
            backend=backend,
            spans=spans,
            stored=after - before,
            pinned=bool(prefix),
            rate=(after - before) / result["wall_s"],
            server_cpu_s=cpu,
            workers_cpu_s=helpers,
            workers_moved=moved,
            cpu_rate=(after - before) / cpu if cpu else 0.0,
        )
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--spans", type=int, default=500, help="spans per batch")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--content-policy", default="full", choices=["full", "redacted", "hashes"])
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument(
        "--no-detection", action="store_true", help="run the server with detection off"
    )
    parser.add_argument(
        "--detection-on-server-core",
        action="store_true",
        help="Leave the detection workers on the server's core (by default they are moved to "
        "the clients' core: they are processes of their own).",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity") and shutil.which("taskset") and os.cpu_count() != 1:
        os.sched_setaffinity(0, {1})  # the clients on the core the server does not use
    log(f"building {args.batches} batches of {args.spans} spans ...")
    bodies = make_batches(args.batches, args.spans)
    spans = args.batches * args.spans
    size = sum(map(len, bodies))
    rate_decode, cpu_rate_decode = decode_alone(bodies[: max(1, len(bodies) // 4)])
    results = []
    for backend in args.backends.split(","):
        if backend == "postgresql":
            why = postgres_unreachable(args.postgres_url)
            if why:
                log(f"postgresql: skipped ({why})")
                continue
        log(f"{backend}:")
        try:
            results.append(bench_backend(backend, args, bodies, spans))
        except BenchError as exc:
            log(f"{backend}: could not run: {exc}")
            return 2
    failed = False
    if args.json:
        document = {"decode_alone": rate_decode, "decode_alone_cpu": cpu_rate_decode}
        print(json.dumps({**document, "results": results}, indent=2))
    print(
        f"Blastwall ingest benchmark: {args.batches} OTLP protobuf batches x {args.spans} "
        f"spans ({size / spans:.0f} B/span, {size / 1e6:.1f} MB), {args.concurrency} "
        f"clients, content policy {args.content_policy}, detection "
        f"{'off' if args.no_detection else 'on'}"
    )
    print(
        f"Python {platform.python_version()}; server pinned to one core: "
        f"{'yes (taskset -c 0)' if results and results[0]['pinned'] else 'no'}"
    )
    print()
    print(
        f"decode alone (protobuf parse + attribute extraction, one core): "
        f"{rate_decode:,.0f} spans/s ({cpu_rate_decode:,.0f} per CPU-second)"
    )
    print()
    print(
        f"{'backend':<11} {'spans':>8} {'stored':>8} {'errors':>6} {'seconds':>8} "
        f"{'spans/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'decode/e2e':>10} {'spans/cpu-s':>11} "
        f"{'cpu ratio':>9}"
    )
    for r in results:
        ratio = rate_decode / r["rate"] if r["rate"] else float("inf")
        cpu_ratio = cpu_rate_decode / r["cpu_rate"] if r["cpu_rate"] else float("inf")
        print(
            f"{r['backend']:<11} {r['spans']:>8,} {r['stored']:>8,} {len(r['errors']):>6} "
            f"{r['wall_s']:>8.2f} {r['rate']:>9,.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{ratio:>9.1f}x {r['cpu_rate']:>11,.0f} {cpu_ratio:>8.1f}x"
        )
        if r["errors"] or r["stored"] != r["spans"] - r["rejected"]:
            failed = True
            for error in r["errors"][:5]:
                print(f"  error: {error}")
        if ratio > GOAL_RATIO:
            failed = True
    where = {True: "the clients' core", False: "the server's core"}
    for r in results:
        if r["workers_cpu_s"] and r["stored"]:
            print(
                f"  {r['backend']}: the server's detection workers, "
                f"on {where[r['workers_moved']]}: "
                f"{r['workers_cpu_s'] / r['stored'] * 1e6:.1f} µs CPU a span beside the "
                "server's own (not in spans/cpu-s)"
            )
    print()
    for r in results:
        if r["backend"] == "sqlite":
            verdict = "PASS" if r["rate"] >= GOAL_SQLITE else "FAIL"
            failed |= verdict == "FAIL"
            print(
                f"Goal: >= {GOAL_SQLITE:,} spans/s committed on SQLite: {r['rate']:,.0f}  {verdict}"
            )
        ratio = rate_decode / r["rate"] if r["rate"] else float("inf")
        print(
            f"Goal: {r['backend']} end to end within {GOAL_RATIO:.0f}x of decode alone: "
            f"{ratio:.1f}x  {'PASS' if ratio <= GOAL_RATIO else 'FAIL'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
