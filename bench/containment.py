#!/usr/bin/env python3
"""Containment benchmark: how fast a change reaches every guard, and what a check costs.

Sets up a fresh installation (`blastwall init`, `inventory apply examples/refund_agent`,
`token create`), starts `blastwall serve` on a free port (SQLite), and connects `--guards`
guards (default 100) to the control stream of `refund-bot`, spread over `--processes` worker
processes (default 4) so that the guards' own CPU use does not sit in the measuring process.

Propagation: `--rounds` times (default 40), the script applies a control (revoke_tool) or
reverts the last one through the API, takes the time the API call returned, and waits until
every guard has the new revision in force (each guard's listener stamps the wall clock when
the state is installed). It reports, over the rounds, p50/p99/max of the time until the last
guard enforces, and over all guard-rounds the p50/p99 per guard. Goal: p99 <= 250 ms.

Check cost: `check_tool` on a guard's local copy, with four controls in force, timed over
`--checks` calls (default 1,000,000) for an allowed tool and for a revoked one. Goal: <= 20 us.

    python bench/containment.py [--guards 100] [--rounds 40] [--json]

Exit status 0 when both goals are met, 1 when one is not, 2 when the benchmark could not run.
Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BenchError, base_env, blastwall, log, percentile, server

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "examples" / "refund_agent" / "inventory.yaml"
SYSTEM = "refund-bot"


def worker(
    url: str, token: str, count: int, first: int, events: Any, stop: Any, ready: Any
) -> None:
    """Hold `count` guards; report (guard, revision, wall time) whenever one installs a state."""
    from blastwall_guard import Guard

    guards = []
    for index in range(first, first + count):
        guard = Guard(SYSTEM, url, token, "closed", max_backoff=0.5)

        def stamp(revision: int, index: int = index) -> None:
            events.put((index, revision, time.time()))

        guard.add_listener(stamp)
        guards.append(guard)
    for guard in guards:
        guard.wait_ready(60)
    ready.put(sum(g.connected for g in guards))
    stop.wait()
    for guard in guards:
        guard.close()


def propagation(url: str, admin: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    events, ready, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    per = -(-args.guards // args.processes)
    procs = []
    for p in range(args.processes):
        count = min(per, args.guards - p * per)
        if count <= 0:
            break
        proc = ctx.Process(
            target=worker, args=(url, token, count, p * per, events, stop, ready), daemon=True
        )
        proc.start()
        procs.append(proc)
    try:
        connected = sum(ready.get(timeout=120) for _ in procs)
        if connected != args.guards:
            raise BenchError(f"only {connected} of {args.guards} guards connected")
        while True:  # drop the initial states
            try:
                events.get(timeout=0.5)
            except queue.Empty:
                break
        log(f"{connected} guards connected")
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        incident = api.post(
            "/api/v1/incidents",
            json={
                "title": "bench",
                "archetype": "agentic_misalignment",
                "severity": "SEV2",
                "systems": [SYSTEM],
            },
        ).json()["id"]
        last_guard: list[float] = []
        per_guard: list[float] = []
        from_sent: list[float] = []
        api_ms: list[float] = []
        action_id = None
        for round_ in range(args.rounds):
            sent = time.time()
            if action_id is None:
                answer = api.post(
                    f"/api/v1/incidents/{incident}/actions",
                    json={
                        "control": "revoke_tool",
                        "params": {"tool": "issue_refund"},
                        "reason": f"bench round {round_}",
                    },
                )
                answer.raise_for_status()
                returned = time.time()
                action_id = answer.json()["id"]
            else:
                answer = api.post(
                    f"/api/v1/incidents/{incident}/actions/{action_id}/revert",
                    json={"reason": f"bench round {round_}"},
                )
                answer.raise_for_status()
                returned = time.time()
                action_id = None
            revision = api.get(f"/api/v1/controls?system={SYSTEM}").json()["revision"]
            seen: dict[int, float] = {}
            deadline = time.monotonic() + 30
            while len(seen) < args.guards:
                try:
                    guard, rev, at = events.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise BenchError(
                        f"round {round_}: {len(seen)} of {args.guards} guards got revision "
                        f"{revision} within 30 s"
                    ) from None
                if rev >= revision and guard not in seen:
                    seen[guard] = at
            delays = [max(0.0, at - returned) * 1000 for at in seen.values()]
            per_guard.extend(delays)
            last_guard.append(max(delays))
            from_sent.append((max(seen.values()) - sent) * 1000)
            api_ms.append((returned - sent) * 1000)
        api.close()
    finally:
        stop.set()
        for proc in procs:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
    last_guard.sort()
    per_guard.sort()
    from_sent.sort()
    api_ms.sort()
    return {
        "api_call_ms": {
            "p50": round(percentile(api_ms, 50), 2),
            "p99": round(percentile(api_ms, 99), 2),
        },
        "all_guards_from_sent_ms": {
            "p50": round(percentile(from_sent, 50), 2),
            "p99": round(percentile(from_sent, 99), 2),
        },
        "guards": args.guards,
        "rounds": args.rounds,
        "all_guards_ms": {
            "p50": round(percentile(last_guard, 50), 2),
            "p99": round(percentile(last_guard, 99), 2),
            "max": round(last_guard[-1], 2),
        },
        "per_guard_ms": {
            "p50": round(percentile(per_guard, 50), 2),
            "p99": round(percentile(per_guard, 99), 2),
        },
    }


def check_cost(checks: int) -> dict[str, float]:
    from blastwall_guard import Guard

    guard = Guard(SYSTEM, "http://127.0.0.1:9", "t", start=False)

    def control(kind: str, n: int, **params: Any) -> dict[str, Any]:
        return {
            "action_id": n,
            "control": kind,
            "params": params,
            "incident_id": 1,
            "set_by": "bench",
            "set_at": "2026-01-01T00:00:00Z",
            "reason": "bench",
            "expires_at": None,
        }

    guard._install(
        {
            "system_id": SYSTEM,
            "revision": 1,
            "fallback": None,
            "controls": [
                control("revoke_tool", 1, tool="issue_refund"),
                control("require_approval", 2, tool="send_email"),
                control("pin_model_version", 3, version="m-1"),
                control("block_input", 4, patterns=["ignore previous"]),
            ],
        }
    )
    args = {"order": "A-100"}
    allowed = (
        min(timeit.repeat(lambda: guard.check_tool("lookup_order", args), number=checks, repeat=3))
        / checks
    )
    denied = (
        min(timeit.repeat(lambda: guard.check_tool("issue_refund", args), number=checks, repeat=3))
        / checks
    )
    return {"allowed_us": round(allowed * 1e6, 3), "denied_us": round(denied * 1e6, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guards", type=int, default=100)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
    }
    try:
        report["check_tool"] = check_cost(args.checks)
        with tempfile.TemporaryDirectory(prefix="blastwall-bench-") as tmp:
            work = Path(tmp)
            env = base_env(work / "data", None)
            log("setting up")
            blastwall(["init"], env, work)
            blastwall(["inventory", "apply", str(INVENTORY)], env, work)
            admin = blastwall(["token", "create", "--name", "bench", "--role", "admin"], env, work)
            reader = blastwall(
                ["token", "create", "--name", "guards", "--role", "viewer"], env, work
            )
            with server(env, work, work / "server.log") as url:
                report["propagation"] = propagation(url, admin.strip(), reader.strip(), args)
    except BenchError as exc:
        log(f"benchmark failed: {exc}")
        return 2
    met = {
        "propagation p99 <= 250 ms": report["propagation"]["all_guards_ms"]["p99"] <= 250,
        "check_tool <= 20 us": max(report["check_tool"].values()) <= 20,
    }
    report["goals"] = met
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        prop, check = report["propagation"], report["check_tool"]
        print(f"machine: {report['machine']}")
        print(
            f"propagation to all {prop['guards']} guards over {prop['rounds']} changes: "
            f"p50 {prop['all_guards_ms']['p50']} ms, p99 {prop['all_guards_ms']['p99']} ms, "
            f"max {prop['all_guards_ms']['max']} ms"
        )
        print(
            f"per guard: p50 {prop['per_guard_ms']['p50']} ms, p99 {prop['per_guard_ms']['p99']} "
            "ms (0: the state reached the guard before the API answer reached the caller)"
        )
        sent, call = prop["all_guards_from_sent_ms"], prop["api_call_ms"]
        print(
            f"from the API call being sent to all guards enforcing: p50 {sent['p50']} ms, "
            f"p99 {sent['p99']} ms (the API call itself: p50 {call['p50']} ms, "
            f"p99 {call['p99']} ms)"
        )
        print(f"check_tool: allowed {check['allowed_us']} us, denied {check['denied_us']} us")
        for goal, ok in met.items():
            print(f"{'met' if ok else 'NOT met'}: {goal}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
