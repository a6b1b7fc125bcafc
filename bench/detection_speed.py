#!/usr/bin/env python3
"""Detection speed: interactions per second through the detectors, on one core.

Builds interactions of about 2 KB (a user message of ~500 characters, a retrieved document of
~500, an answer of ~1,000; some with tool calls, a few with personal data) and times, in this
one process (`--cpu N` pins it to one CPU):

  (a) stateless   the stateless default detectors (injection, sensitive data, canary, system
                  prompt leak, tool policy, guardrail) through the engine, with the example
                  support chatbot's settings (its prompt text registered, a live canary);
                  and the cost of each of them, run alone, in µs an interaction
  (b) all         every default detector, the stateful ones (runaway, service levels, drift)
                  included
  (c) hyperscan   the injection rule pack alone, compiled into one Hyperscan database, over
                  the three texts of each interaction
  (d) python re   the same rule pack through Python's `re`, one pattern after another
  (e) ingest      decoded OTLP batches stored by `telemetry.service.ingest` into a fresh
                  SQLite database without detection; with the detectors in a worker
                  process, as the server runs them by default (the rate counts this
                  process, the server's side: handing the interactions over; the worker,
                  which runs the detectors and stores the signals, is moved to another
                  core and its CPU reported beside it); and with the detectors in the
                  ingest transaction (BLASTWALL_DETECTION_WORKERS=0), so the overheads show

Goals: (a) at least 20,000 interactions/s per core; detection adding at most 30% to (e).

Rates are per second of this process's CPU time (`time.process_time`), not of the wall clock:
on a shared machine the wall clock counts the time other processes had the core, and a rate
per CPU-second is what one core can do. Each figure is the best of `--repeat` runs.

  python bench/detection_speed.py [--items 5000] [--batches 40] [--cpu N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode import _sentence, make_batches

from blastwall import wiring
from blastwall.db import make_engine
from blastwall.detection.base import Item, ToolCall
from blastwall.detection.builtin.canary import token_hash
from blastwall.detection.builtin.injection import RULE_SET
from blastwall.detection.engine import DetectionEngine, detector_classes
from blastwall.inventory import service as inventory_service
from blastwall.inventory.loader import load_path
from blastwall.inventory.schemas import Tool
from blastwall.migrate import upgrade
from blastwall.telemetry.flows import ingest
from blastwall.telemetry.otlp import decode_protobuf

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "inventory"
DATA = ROOT / "bench" / "data"
GOAL_RATE = 20_000
GOAL_OVERHEAD = 0.30


_LEAKS = (
    "You can reach the customer at jane.doe{n}@example.net.",
    "The card on file is 4111 1111 1111 1111.",
    "Call them on +44 20 7946 {n:04d}.",
)


def _paragraph(rng: random.Random, size: int) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        part = _sentence(rng, rng.randint(6, 16))
        parts.append(part)
        length += len(part) + 1
    return " ".join(parts)


def _corpus() -> dict[str, list[str]]:
    """Benign texts by channel: the people's messages, documents and answers of the quality
    benchmark's benign set, and BIPIA's e-mails and tables as retrieved documents."""
    texts: dict[str, list[str]] = {"inputs": [], "context": [], "outputs": []}
    for line in (DATA / "injection" / "benign_chat.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["kind"] != "hard_negative":
            texts[entry["channel"]].append(entry["text"])
    for name in ("email", "table"):
        for line in (DATA / "bipia" / name / "test.jsonl").read_text().splitlines():
            entry = json.loads(line)
            texts["context"].append(entry["context"])
            if len(entry.get("ideal", "")) > 40:
                texts["outputs"].append(entry["ideal"])
    texts["outputs"].extend(texts["context"][::3])  # answers that quote documents
    return texts


def _fill(rng: random.Random, pool: list[str], size: int) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        part = rng.choice(pool)[: size - length + 200]
        parts.append(part)
        length += len(part) + 1
    return "\n".join(parts)


def make_items(count: int, seed: int = 7, synthetic: bool = False) -> list[Item]:
    """Interactions of ~2 KB: ~500 characters of user messages, ~500 of retrieved documents,
    ~1,000 of answer; one answer in fifty carries personal data. `synthetic`: word salad from
    bench/decode.py's support vocabulary instead of the benign corpus."""
    rng = random.Random(seed)
    corpus = _corpus()

    def text(rng: random.Random, channel: str, size: int) -> str:
        return _paragraph(rng, size) if synthetic else _fill(rng, corpus[channel], size)

    def leak(rng: random.Random, n: int) -> str:
        return " " + rng.choice(_LEAKS).format(n=rng.randint(0, 9999)) if n % 50 == 0 else ""

    items: list[Item] = []
    start = time.time() - count
    for n in range(count):
        calls = []
        if n % 5 == 0:
            calls = [ToolCall("create-handover", {"reason": _paragraph(rng, 60)}, f"c{n}")]
        items.append(
            Item(
                inputs=[text(rng, "inputs", 500)],
                context=[text(rng, "context", 500)],
                outputs=[text(rng, "outputs", 1000) + leak(rng, n)],
                tool_calls=calls,
                system_id="support-chatbot",
                conversation_id=f"conv-{n // 4}",
                operation="chat",
                time=start + n,
                latency_ms=rng.uniform(300, 2500),
                input_tokens=rng.randint(200, 900),
                output_tokens=rng.randint(100, 400),
                finish_reasons=["stop"],
                ref=n,
            )
        )
    return items


def fresh(items: list[Item]) -> list[Item]:
    """Copies with empty `hits`: the engine fills them in."""
    copies = []
    for item in items:
        copy = Item(**{f: getattr(item, f) for f in Item.__slots__ if f != "hits"})
        copies.append(copy)
    return copies


def rate_engine(
    engine: DetectionEngine, items: list[Item], spec: dict[str, Any], repeat: int = 3
) -> float:
    specs = {"support-chatbot": spec}
    engine.run(fresh(items[:200]), specs.get)  # build the detectors, warm the caches
    best = 0.0
    for _ in range(repeat):
        batch = fresh(items)
        started = time.process_time()
        engine.run(batch, specs.get)
        best = max(best, len(items) / (time.process_time() - started))
    return best


def cost_by_detector(
    engine: DetectionEngine, items: list[Item], spec: dict[str, Any], repeat: int = 3
) -> dict[str, float]:
    """µs of CPU an interaction for each stateless detector of the system, each run alone
    over the interactions (the engine runs them so, detector after detector)."""
    engine.run(fresh(items[:200]), {"support-chatbot": spec}.get)
    costs: dict[str, float] = {}
    for detector in engine.detectors("support-chatbot", spec).stateless:
        best = float("inf")
        for _ in range(repeat):
            batch = fresh(items)
            started = time.process_time()
            for item in batch:
                detector.detect(item)
            best = min(best, time.process_time() - started)
        costs[detector.id] = best / len(items) * 1e6
    return costs


def rate_hyperscan(items: list[Item]) -> float:
    texts = ["\n".join(t).encode() for i in items for t in (i.inputs, i.context, i.outputs)]
    started = time.process_time()
    for data in texts:
        RULE_SET.scan(data)
    return len(items) / (time.process_time() - started)


def rate_re(items: list[Item], limit: int = 300) -> float:
    sample = items[:limit]
    texts = ["\n".join(t) for i in sample for t in (i.inputs, i.context, i.outputs)]
    started = time.process_time()
    for text in texts:
        RULE_SET.scan_re(text)
    return len(sample) / (time.process_time() - started)


def rate_ingest(bodies: list[bytes], detection: str) -> tuple[float, int, float]:
    """Spans per second through decode + ingest into a fresh SQLite file, signals made, and
    the detection workers' CPU seconds per span. `detection`: "off", "inline" (in the ingest
    transaction) or "workers" (one detection worker process; the rate counts this process
    only, the workers' CPU is the third figure)."""
    from sqlalchemy import func, select

    from blastwall.db import Database
    from blastwall.detection.workers import DetectionWorkers
    from blastwall.signals.models import Signal

    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        upgrade(engine)
        db = Database(engine)
        specs = [loaded.spec for loaded in load_path(EXAMPLES)]
        for spec in specs:
            if spec.id == "support-chatbot":
                spec.telemetry.service_names = ["support-bot-0", "support-bot-1", "support-bot-2"]
                # the bench's tool spans call lookup_order: approved, as most calls are
                spec.components.tools.append(Tool(name="lookup_order", permissions=["orders:read"]))
        with db.transaction() as session:
            inventory_service.apply_specs(session, specs=specs, actor="bench")
        detector: DetectionEngine | DetectionWorkers | None = None
        workers = None
        if detection == "inline":
            detector = DetectionEngine()
        elif detection == "workers":
            detector = workers = DetectionWorkers(
                1, f"sqlite:///{folder}/bench.db", setup=wiring.install
            )
            workers.start()
            if hasattr(os, "sched_setaffinity"):  # the worker on a core of its own, not ours
                others = os.sched_getaffinity(0) ^ set(range(os.cpu_count() or 1))
                for pid in workers.pids():
                    os.sched_setaffinity(pid, others or os.sched_getaffinity(0))
        with db.transaction() as session:  # warm up: detectors built, caches filled
            ingest(session, decoded=decode_protobuf(bodies[0]), detection=detector)
        if workers is not None:
            workers.wait(120)
            worker_start = workers.cpu_seconds
        spans = 0
        started = time.process_time()
        for body in bodies[1:]:
            decoded = decode_protobuf(body)
            with db.transaction() as session:
                result = ingest(session, decoded=decoded, detection=detector)
            spans += result.accepted
        elapsed = time.process_time() - started
        worker_cpu = 0.0
        if workers is not None:
            workers.wait(600)
            worker_cpu = workers.cpu_seconds - worker_start
            workers.stop(30)
        with db.transaction() as session:
            query = select(func.count(Signal.id)).where(Signal.source == "detector")
            signals = session.scalar(query)
        engine.dispose()
    return spans / elapsed, int(signals or 0), worker_cpu / max(spans, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--spans", type=int, default=500)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="Best of this many runs.")
    parser.add_argument(
        "--synthetic", action="store_true", help="Word salad instead of the benign corpus."
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    wiring.install()  # the pipeline's steps, as a server process makes them
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    spec = yaml.safe_load((EXAMPLES / "support-chatbot.yaml").read_text())
    items = make_items(args.items, synthetic=args.synthetic)
    size = sum(len("".join([*i.inputs, *i.context, *i.outputs])) for i in items) / len(items)
    stateless = [cls for cls in detector_classes() if not cls.stateful]
    canary_engine = DetectionEngine(stateless)
    canary_engine.canaries.replace({token_hash("bwc_" + "a" * 24): "support-chatbot"}, 1)
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "items": len(items),
        "average_chars": round(size),
        "stateless_per_s": rate_engine(canary_engine, items, spec, args.repeat),
        "stateless_us_by_detector": cost_by_detector(canary_engine, items, spec, args.repeat),
        "all_per_s": rate_engine(DetectionEngine(), items, spec, args.repeat),
        "hyperscan_rules_per_s": rate_hyperscan(items),
        "python_re_rules_per_s": rate_re(items),
    }
    bodies = make_batches(args.batches, args.spans)
    plain = inline = handed = 0.0
    signals = handed_signals = 0
    worker_cpu = float("inf")
    for _ in range(args.repeat):  # alternated, so that all three see the same machine
        plain = max(plain, rate_ingest(bodies, "off")[0])
        rate, signals, _ = rate_ingest(bodies, "inline")
        inline = max(inline, rate)
        rate, handed_signals, cpu = rate_ingest(bodies, "workers")
        handed = max(handed, rate)
        worker_cpu = min(worker_cpu, cpu)
    results.update(
        ingest_without_detection_spans_per_s=plain,
        ingest_with_detection_spans_per_s=handed,
        ingest_signals=handed_signals,
        detection_overhead=plain / handed - 1,
        detection_worker_cpu_us_per_span=worker_cpu * 1e6,
        ingest_inline_detection_spans_per_s=inline,
        ingest_inline_signals=signals,
        inline_detection_overhead=plain / inline - 1,
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"Python {results['python']}, {len(items)} interactions of ~{size:.0f} characters")
    print(f"  stateless detectors     {results['stateless_per_s']:>10,.0f} interactions/s")
    for name, cost in sorted(results["stateless_us_by_detector"].items(), key=lambda c: -c[1]):
        print(f"    {name:<21} {cost:>10.1f} µs CPU an interaction")
    print(f"  all detectors           {results['all_per_s']:>10,.0f} interactions/s")
    print(f"  injection rules (hs)    {results['hyperscan_rules_per_s']:>10,.0f} interactions/s")
    print(f"  injection rules (re)    {results['python_re_rules_per_s']:>10,.0f} interactions/s")
    overhead = results["detection_overhead"]
    per_span = 1e6 / plain
    print(f"  ingest, no detection    {plain:>10,.0f} spans/s ({per_span:.1f} µs CPU a span)")
    print(
        f"  ingest, detection       {handed:>10,.0f} spans/s ({handed_signals} signals), "
        "detectors in a worker process"
    )
    print(f"  detection overhead      {overhead:>10.1%} of the ingest path's cost")
    print(
        f"  detection worker        {results['detection_worker_cpu_us_per_span']:>10.1f} µs CPU "
        "a span, on its own core"
    )
    print(
        f"  ingest, inline          {inline:>10,.0f} spans/s ({signals} signals), "
        f"BLASTWALL_DETECTION_WORKERS=0: "
        f"{results['inline_detection_overhead']:.1%} overhead"
    )
    verdict_rate = "PASS" if results["stateless_per_s"] >= GOAL_RATE else "FAIL"
    verdict_cost = "PASS" if overhead <= GOAL_OVERHEAD else "FAIL"
    print(f"goal ≥{GOAL_RATE:,}/s stateless: {verdict_rate}; overhead ≤30%: {verdict_cost}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
