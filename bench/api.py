#!/usr/bin/env python3
"""Blastwall API benchmark: incident create, list and timeline under concurrent load.

For each backend (SQLite always; PostgreSQL when reachable) this script sets up a fresh
installation the way an operator would (`blastwall init`, `inventory apply`, `token create`),
bulk-seeds most of the incidents straight into the database with the product's models, starts
`blastwall serve` on a free port and then drives the HTTP API with N concurrent clients:

  create incident     POST /api/v1/incidents              (the rest of the incidents)
  add timeline note   POST /api/v1/incidents/{id}/timeline
  read timeline       GET  /api/v1/incidents/{id}/timeline
  list first page     GET  /api/v1/incidents?limit=50

Every request is timed on its own; a phase reports count, errors (any non-2xx answer or
transport error), requests/second over the phase's wall time, and p50/p99/max latency over
all requests of the phase. Finally one client walks every incident page by page (limit=50),
`--walks` times, checks each walk against the count in the database, and checks the
requirement "listing 10,000 incidents paginated stays under 50 ms per page at p99" on the p99
over all pages walked.

It is a script, not a test: `python bench/api.py [--json]`. Exit status: 0 when every
backend ran, answered without errors and passed the pagination requirement; 1 when a
backend had request errors or failed the requirement; 2 when the benchmark could not run.
Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    BenchError,
    base_env,
    blastwall,
    log,
    percentile,
    postgres_unreachable,
    prepare_postgres,
    server,
)

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "examples" / "inventory"
SYSTEMS = ["support-chatbot", "refund-agent", "fraud-scoring", "code-assistant"]
ARCHETYPES = ["prompt_injection", "data_exfiltration", "model_manipulation", "vendor_failure"]
SEVERITIES = ["SEV1", "SEV2", "SEV3", "SEV4"]
TOKEN_NAME = "bench"
PAGE_LIMIT = 50
REQUIREMENT_MS = 50.0
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/blastwall_bench"
MAX_ERROR_SAMPLES = 5


# --------------------------------------------------------------------------- statistics


@dataclass
class OpStats:
    operation: str
    count: int = 0
    errors: int = 0
    wall_s: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    error_samples: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls, operation: str, latencies: list[float], errors: int, wall_s: float, samples: list[str]
    ) -> OpStats:
        values = sorted(latencies)
        return cls(
            operation=operation,
            count=len(values),
            errors=errors,
            wall_s=round(wall_s, 3),
            rps=round(len(values) / wall_s, 1) if wall_s > 0 else 0.0,
            p50_ms=round(percentile(values, 50) * 1000, 2),
            p99_ms=round(percentile(values, 99) * 1000, 2),
            max_ms=round(values[-1] * 1000, 2) if values else 0.0,
            error_samples=samples,
        )


@dataclass
class Pagination:
    walks: int = 0
    pages: int = 0  # per walk
    incidents_seen: int = 0
    incidents_expected: int = 0  # counted in the database after the load
    consistent: bool = False
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    walk_p99_ms: list[float] = field(default_factory=list)
    errors: int = 0
    requirement_ms: float = REQUIREMENT_MS
    passed: bool = False
    problem: str | None = None


@dataclass
class BackendResult:
    backend: str
    database: str = ""
    status: str = "ok"  # ok | skipped | failed
    reason: str | None = None
    setup_s: dict[str, float] = field(default_factory=dict)
    seeded: int = 0
    operations: list[OpStats] = field(default_factory=list)
    pagination: Pagination | None = None
    server_errors: list[str] = field(default_factory=list)
    server_5xx: int = 0
    # create requests that answered with an error (5xx, transport error) yet left an incident
    created_despite_error: int = 0


# --------------------------------------------------------------------------- installation


def seed(url: str, count: int, actor: str) -> list[int]:
    """Insert `count` incidents the way `service.create_incident` writes them: the incident,
    its system, the creator as participant and the 'created' timeline entry."""
    from sqlalchemy import insert

    import blastwall.models  # noqa: F401  (every table, for the foreign keys)
    from blastwall.db import make_engine, utcnow
    from blastwall.incidents.lifecycle import Status
    from blastwall.incidents.models import Incident, IncidentSystem, Participant, TimelineEntry

    engine = make_engine(url)
    start = utcnow() - timedelta(days=30)
    seeded: list[int] = []
    try:
        with engine.begin() as conn:
            for first in range(0, count, 2000):
                numbers = range(first, min(first + 2000, count))
                rows = []
                for n in numbers:
                    at = start + timedelta(seconds=n)
                    rows.append(
                        {
                            "title": f"seeded incident {n}",
                            "summary": "",
                            "archetype": ARCHETYPES[n % len(ARCHETYPES)],
                            "severity": SEVERITIES[n % len(SEVERITIES)],
                            "severity_reason": "",
                            "status": Status.triage.value,
                            "visibility": "open",
                            "merged_into_id": None,
                            "created_by": actor,
                            "created_at": at,
                            "updated_at": at,
                            "detected_at": at,
                        }
                    )
                returning = insert(Incident).returning(Incident.id, sort_by_parameter_order=True)
                ids = list(conn.execute(returning, rows).scalars())
                if len(ids) != len(rows):
                    raise BenchError(f"seeding: {len(rows)} incidents inserted, {len(ids)} ids")
                seeded.extend(ids)
                systems = [SYSTEMS[n % len(SYSTEMS)] for n in numbers]
                conn.execute(
                    insert(IncidentSystem),
                    [{"incident_id": i, "system_id": s} for i, s in zip(ids, systems, strict=True)],
                )
                conn.execute(
                    insert(Participant),
                    [
                        {"incident_id": i, "principal": actor, "added_at": r["created_at"]}
                        for i, r in zip(ids, rows, strict=True)
                    ],
                )
                conn.execute(
                    insert(TimelineEntry),
                    [
                        {
                            "incident_id": i,
                            "kind": "created",
                            "text": f"Incident opened: {r['title']}",
                            "data": {
                                "severity": r["severity"],
                                "archetype": r["archetype"],
                                "systems": [s],
                                "visibility": "open",
                            },
                            "ref_id": None,
                            "actor": actor,
                            "at": r["created_at"],
                        }
                        for i, r, s in zip(ids, rows, systems, strict=True)
                    ],
                )
    finally:
        engine.dispose()
    return seeded


def count_incidents(url: str) -> int:
    """Incidents in the database, counted directly (the truth the walk is checked against)."""
    from sqlalchemy import func, select

    from blastwall.db import make_engine
    from blastwall.incidents.models import Incident

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Incident)) or 0)
    finally:
        engine.dispose()


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout)\b.*")
ACCESS_5XX = re.compile(r'" 5\d\d ')


def server_problems(log_path: Path) -> tuple[list[str], int]:
    """Distinct error lines of the server log (with counts) and the number of 5xx answers."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return [], 0
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("unhandled error") or EXCEPTION_LINE.match(line):
            counts[line.strip()[:300]] += 1
    fives = sum(1 for line in text.splitlines() if ACCESS_5XX.search(line))
    return [f"{n}x {line}" for line, n in counts.most_common(10)], fives


# --------------------------------------------------------------------------- load


Request = tuple[str, str, dict[str, Any] | None]


async def run_phase(
    client: httpx.AsyncClient,
    operation: str,
    count: int,
    concurrency: int,
    make: Callable[[int], Request],
    on_ok: Callable[[httpx.Response], None] | None = None,
) -> OpStats:
    latencies: list[float] = []
    samples: list[str] = []
    errors = 0
    jobs = iter(range(count))  # shared by the workers; safe, they run on one event loop

    async def worker() -> None:
        nonlocal errors
        for n in jobs:
            method, url, body = make(n)
            started = time.perf_counter()
            try:
                response = await client.request(method, url, json=body)
                latencies.append(time.perf_counter() - started)
            except httpx.HTTPError as exc:
                latencies.append(time.perf_counter() - started)
                errors += 1
                if len(samples) < MAX_ERROR_SAMPLES:
                    samples.append(f"{method} {url}: {type(exc).__name__}: {exc}")
                continue
            if 200 <= response.status_code < 300:
                if on_ok is not None:
                    on_ok(response)
            else:
                errors += 1
                if len(samples) < MAX_ERROR_SAMPLES:
                    samples.append(
                        f"{method} {url} -> {response.status_code}: {response.text[:300]}"
                    )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return OpStats.build(operation, latencies, errors, time.perf_counter() - started, samples)


async def load(
    base: str,
    token: str,
    *,
    creates: int,
    ops: int,
    concurrency: int,
    timeout: float,
    known_ids: list[int],
) -> list[OpStats]:
    rng = random.Random(20261122)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=timeout
    ) as client:
        # warm-up: open the connections, fill the server's caches and pools
        answers = await asyncio.gather(
            *(client.get(f"/api/v1/incidents?limit={PAGE_LIMIT}") for _ in range(concurrency)),
            return_exceptions=True,
        )
        failed = [a for a in answers if not isinstance(a, httpx.Response) or a.is_error]
        if failed:
            log(f"  warning: {len(failed)} of {concurrency} warm-up requests failed: {failed[0]!r}")
        results = []

        def create(n: int) -> Request:
            body = {
                "title": f"bench incident {n}",
                "archetype": ARCHETYPES[n % len(ARCHETYPES)],
                "severity": SEVERITIES[n % len(SEVERITIES)],
                "systems": [SYSTEMS[n % len(SYSTEMS)]],
            }
            return "POST", "/api/v1/incidents", body

        def created(response: httpx.Response) -> None:
            known_ids.append(int(response.json()["id"]))

        log(f"  create incident x{creates} ...")
        results.append(
            await run_phase(client, "create incident", creates, concurrency, create, created)
        )
        if not known_ids:
            raise BenchError("no incident to add timeline entries to")

        def note(n: int) -> Request:
            incident = rng.choice(known_ids)
            body = {"kind": "note", "text": f"bench note {n}"}
            return "POST", f"/api/v1/incidents/{incident}/timeline", body

        log(f"  add timeline note x{ops} ...")
        results.append(await run_phase(client, "add timeline note", ops, concurrency, note))

        def timeline(_: int) -> Request:
            return "GET", f"/api/v1/incidents/{rng.choice(known_ids)}/timeline", None

        log(f"  read timeline x{ops} ...")
        results.append(await run_phase(client, "read timeline", ops, concurrency, timeline))

        def first_page(_: int) -> Request:
            return "GET", f"/api/v1/incidents?limit={PAGE_LIMIT}", None

        log(f"  list first page x{ops} ...")
        results.append(await run_phase(client, "list first page", ops, concurrency, first_page))
    return results


def walk_once(client: httpx.Client, expected: int) -> tuple[list[float], list[int], str | None]:
    """Every page of the incident list, oldest cursor first: page latencies, ids seen and
    the problem that stopped the walk early (None when it reached the last page)."""
    latencies: list[float] = []
    ids: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if cursor is not None:
            params["cursor"] = cursor
        t0 = time.perf_counter()
        try:
            response = client.get("/api/v1/incidents", params=params)
        except httpx.HTTPError as exc:
            return latencies, ids, f"page {len(latencies) + 1}: {type(exc).__name__}: {exc!r}"
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 200:
            problem = f"page {len(latencies)} -> {response.status_code}: {response.text[:300]}"
            return latencies, ids, problem
        page = response.json()
        ids.extend(int(item["id"]) for item in page["items"])
        cursor = page.get("next")
        if cursor is None:
            return latencies, ids, None
        if len(latencies) > expected // PAGE_LIMIT + 100:
            return latencies, ids, "the walk does not end: more pages than incidents"


def paginate(
    base: str, token: str, expected: int, walks: int, timeout: float
) -> tuple[Pagination, OpStats]:
    """One client walks every incident `walks` times, `PAGE_LIMIT` per page, timing each page;
    each walk must see every incident once, newest first."""
    result = Pagination(incidents_expected=expected, walks=walks)
    latencies: list[float] = []
    samples: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:
        client.get(f"/api/v1/incidents?limit={PAGE_LIMIT}")  # warm-up
        for _ in range(walks):
            pages, ids, problem = walk_once(client, expected)
            latencies += pages
            result.pages = len(pages)
            result.incidents_seen = len(ids)
            result.walk_p99_ms.append(round(percentile(sorted(pages), 99) * 1000, 2))
            if problem is None and not (
                len(ids) == expected and all(a > b for a, b in pairwise(ids))
            ):
                problem = (
                    f"walk saw {len(ids)} incidents ({len(set(ids))} distinct) of {expected} "
                    "in the database, or not newest first"
                )
            if problem is not None:
                result.problem = problem
                result.errors += 1
                samples.append(problem)
                break
    wall = time.perf_counter() - started
    stats = OpStats.build(f"paginate limit={PAGE_LIMIT}", latencies, result.errors, wall, samples)
    result.consistent = result.problem is None
    result.p50_ms, result.p99_ms, result.max_ms = stats.p50_ms, stats.p99_ms, stats.max_ms
    result.passed = result.consistent and result.p99_ms < result.requirement_ms
    return result, stats


# --------------------------------------------------------------------------- one backend


def bench_backend(backend: str, args: argparse.Namespace) -> BackendResult:
    from blastwall.settings import Settings

    result = BackendResult(backend=backend)
    database_url: str | None = None
    if backend == "postgresql":
        database_url = args.postgres_url
        reason = postgres_unreachable(database_url)
        if reason:
            result.status, result.reason = "skipped", f"PostgreSQL not reachable ({reason})"
            return result
    workdir = Path(tempfile.mkdtemp(prefix=f"blastwall-bench-{backend}-"))
    data_dir = workdir / "data"
    log_path = workdir / "server.log"
    env = base_env(data_dir, database_url)
    resolved = Settings(data_dir=data_dir, database_url=database_url).resolved_database_url
    result.database = re.sub(r"//([^:@/]+):[^@/]*@", r"//\1:***@", resolved)
    creates = min(args.creates, args.incidents)
    to_seed = args.incidents - creates
    try:
        t0 = time.perf_counter()
        if backend == "postgresql":
            assert database_url is not None
            prepare_postgres(database_url)
        blastwall(["init"], env, workdir)
        blastwall(["inventory", "apply", str(INVENTORY)], env, workdir)
        token = blastwall(
            ["token", "create", "--name", TOKEN_NAME, "--role", "admin"], env, workdir
        )
        token = token.strip().splitlines()[0].strip()
        result.setup_s["install"] = round(time.perf_counter() - t0, 2)

        t0 = time.perf_counter()
        log(f"  seeding {to_seed} incidents into {result.database} ...")
        known_ids = seed(resolved, to_seed, TOKEN_NAME)
        result.seeded = len(known_ids)
        result.setup_s["seed"] = round(time.perf_counter() - t0, 2)

        t0 = time.perf_counter()
        with server(env, workdir, log_path) as base:
            result.setup_s["server_start"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            result.operations = asyncio.run(
                load(
                    base,
                    token,
                    creates=creates,
                    ops=args.ops,
                    concurrency=args.concurrency,
                    timeout=args.timeout,
                    known_ids=known_ids,
                )
            )
            create_op = result.operations[0]
            expected = count_incidents(resolved)
            answered = result.seeded + create_op.count - create_op.errors
            result.created_despite_error = max(0, expected - answered)
            log(f"  paginating {expected} incidents, {PAGE_LIMIT} per page ...")
            result.pagination, walk = paginate(base, token, expected, args.walks, args.timeout)
            result.operations.append(walk)
            result.setup_s["load_and_walk"] = round(time.perf_counter() - t0, 2)
    except BenchError as exc:
        result.status, result.reason = "failed", str(exc)
    except Exception as exc:
        result.status, result.reason = "failed", f"{type(exc).__name__}: {exc!r}"
    finally:
        result.server_errors, result.server_5xx = server_problems(log_path)
        if args.keep:
            log(f"  kept {workdir} (server log: {log_path})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- report


def render(results: list[BackendResult], args: argparse.Namespace) -> str:
    lines = [
        f"Blastwall API benchmark: {args.incidents:,} incidents, "
        f"{args.concurrency} concurrent clients, {args.ops:,} requests per read/note operation",
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPU(s); client and server share the machine",
        "",
    ]
    header = (
        f"{'backend':<11} {'operation':<20} {'count':>6} {'errors':>6} {'req/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    lines += [header, "-" * len(header)]
    for r in results:
        if r.status == "skipped":
            lines.append(f"{r.backend:<11} skipped: {r.reason}")
            continue
        for op in r.operations:
            lines.append(
                f"{r.backend:<11} {op.operation:<20} {op.count:>6} {op.errors:>6} "
                f"{op.rps:>8.1f} {op.p50_ms:>8.2f} {op.p99_ms:>8.2f} {op.max_ms:>8.2f}"
            )
        if r.status == "failed":
            lines.append(f"{r.backend:<11} FAILED: {r.reason}")
    lines.append("")
    lines.append(
        f"Requirement: listing {args.incidents:,} incidents paginated "
        f"(limit={PAGE_LIMIT}) stays under {REQUIREMENT_MS:.0f} ms per page at p99"
    )
    lines.append(f"  (one client; p99 over every page of {args.walks} walk(s))")
    for r in results:
        p = r.pagination
        if p is None:
            lines.append(f"  {r.backend:<11} not measured ({r.status})")
            continue
        verdict = "PASS" if p.passed else "FAIL"
        per_walk = " / ".join(f"{v:.2f}" for v in p.walk_p99_ms)
        lines.append(
            f"  {r.backend:<11} p99 {p.p99_ms:.2f} ms, p50 {p.p50_ms:.2f} ms over {p.walks} x "
            f"{p.pages} pages ({p.incidents_seen:,} incidents)  {verdict}"
        )
        lines.append(f"  {'':<11} p99 of each walk: {per_walk} ms")
        if p.problem:
            lines.append(f"  {'':<11} problem: {p.problem}")
    lines.append("")
    for r in results:
        if r.setup_s:
            steps = ", ".join(f"{k} {v}" for k, v in r.setup_s.items())
            seeded = f"; {r.seeded:,} incidents seeded in bulk" if r.seeded else ""
            lines.append(f"Timings (s), {r.backend}: {steps}{seeded}")
    for r in results:
        samples = [s for op in r.operations for s in op.error_samples]
        if samples or r.server_errors or r.server_5xx or r.created_despite_error:
            lines.append("")
            lines.append(f"{r.backend}: {r.server_5xx} answer(s) 5xx in the server log")
            if r.created_despite_error:
                lines.append(
                    f"  {r.created_despite_error} create request(s) answered with an error "
                    "but the incident was created anyway"
                )
            for s in samples:
                lines.append(f"  error: {s}")
            for s in r.server_errors:
                lines.append(f"  server log: {s}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Exit status 0: all ran without errors and passed; 1: errors or FAIL; "
        "2: could not run.",
    )
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default: both; PostgreSQL is skipped "
        "when not reachable)",
    )
    parser.add_argument(
        "--incidents", type=int, default=10_000, help="incidents in the database (default 10000)"
    )
    parser.add_argument(
        "--creates",
        type=int,
        default=2_000,
        help="of those, how many are created through the API under load; the rest are "
        "seeded in bulk (default 2000)",
    )
    parser.add_argument(
        "--ops",
        type=int,
        default=1_000,
        help="requests per other operation: notes, timeline reads, first pages (default 1000)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="concurrent clients (default 16)"
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_PG_URL,
        help=f"dedicated database, emptied at start (default {DEFAULT_PG_URL})",
    )
    parser.add_argument(
        "--walks",
        type=int,
        default=3,
        help="times the pagination check walks every page; its p99 is over all of them (default 3)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="per-request timeout, seconds (default 30)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary data dirs and server logs"
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("sqlite", "postgresql")]
    if unknown or not backends:
        parser.error(f"unknown backend(s): {', '.join(unknown) or '(none)'}")
    if min(args.incidents, args.creates, args.ops, args.concurrency, args.walks, args.timeout) <= 0:
        parser.error(
            "--incidents, --creates, --ops, --concurrency, --walks and --timeout must be positive"
        )

    results = []
    started = time.perf_counter()
    for backend in backends:
        log(f"{backend}:")
        results.append(bench_backend(backend, args))
    elapsed = round(time.perf_counter() - started, 1)

    if args.json:
        document = {
            "config": {
                "backends": backends,
                "incidents": args.incidents,
                "creates": min(args.creates, args.incidents),
                "ops": args.ops,
                "concurrency": args.concurrency,
                "page_limit": PAGE_LIMIT,
                "requirement_p99_ms": REQUIREMENT_MS,
                "walks": args.walks,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            "elapsed_s": elapsed,
            "results": [asdict(r) for r in results],
        }
        print(json.dumps(document, indent=2))
    else:
        print(render(results, args))
        print(f"\nTotal time {elapsed} s")

    if any(r.status == "failed" for r in results):
        return 2
    ran = [r for r in results if r.status == "ok"]
    if not ran:
        return 2
    bad = any(
        (r.pagination is not None and not r.pagination.passed)
        or any(op.errors for op in r.operations)
        for r in ran
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
