#!/usr/bin/env python3
"""Evidence benchmark: bundle verification throughput, and retro-hunt time over 1,000,000
stored interactions on SQLite.

1. SHA-256 alone: `hashlib.sha256` over an in-memory buffer (`--sha-mb`), best of
   `--repeat`: the ceiling for verification.
2. Verification: a bundle of `--bundle-mb` of random items (`--items` of them) with a ledger
   segment of `--records` records (one collection record per item and every 50th record
   with its body; the rest, other incidents' records, by body hash alone, as an export
   writes them) is written with the product's `write_bundle`, then checked
   with `verify_bundle` (every member read, hashed, written again in the canonical layout
   and compared, signatures and chain checked). MB/s = bytes of members / wall time, best of
   `--repeat`, file in the page cache. Goal: at least 300 MB/s.
3. Hunt: `--rows` interactions (default 1,000,000) are generated into a fresh SQLite
   installation (`blastwall init`'s migrations) with one bulk `executemany` in a single
   transaction; each has a user prompt and an answer (about 300 bytes of JSON content),
   every 7th a tool call with JSON arguments. `--needles` rows carry a leaked key. Then the
   product's `run_hunt` runs a regex hunt, a literal text hunt and a hunt that matches
   nothing, each timed end to end (count, scan, confirm, store matches, summary). Goal:
   at most 5 s per hunt. `--db PATH` keeps the generated database and reuses it.

  python bench/evidence.py [--bundle-mb 256] [--rows 1000000] [--db /tmp/hunt.db] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blastwall.auth.roles import Principal, Role
from blastwall.db import Database, make_engine
from blastwall.evidence import hunt
from blastwall.evidence.bundle import BundleItem, verify_bundle, write_bundle
from blastwall.evidence.ledger import (
    GENESIS,
    Keypair,
    LedgerRow,
    body_hash,
    canonical,
    checkpoint_message,
    record_hash,
)
from blastwall.evidence.schemas import HuntIn
from blastwall.migrate import upgrade
from blastwall.settings import Settings

MB = 1024 * 1024
WORDS = [
    "order",
    "refund",
    "delivery",
    "account",
    "password",
    "invoice",
    "shipping",
    "tracking",
    "payment",
    "card",
    "address",
    "change",
    "cancel",
    "subscription",
    "plan",
    "upgrade",
    "support",
    "agent",
    "policy",
    "return",
    "label",
    "warranty",
    "broken",
    "screen",
    "battery",
    "charger",
    "delay",
    "week",
    "today",
    "tomorrow",
    "please",
    "thanks",
]


def sha256_speed(size_mb: int, repeat: int) -> float:
    buffer = os.urandom(16 * MB) * max(1, size_mb // 16)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        hashlib.sha256(buffer).digest()
        best = min(best, time.perf_counter() - start)
    return len(buffer) / MB / best


def _ledger(items: list[dict[str, Any]], records: int) -> list[LedgerRow]:
    rows: list[LedgerRow] = []
    prev = GENESIS
    for seq in range(1, records + 1):
        item = items[seq - 1] if seq <= len(items) else None
        body = canonical(
            {
                "v": 1,
                "seq": seq,
                "action": "collected" if item else "viewed",
                "incident": 1,
                "item": item["id"] if item else 1,
                "item_hash": item["sha256"] if item else None,
                "actor": "bench",
                "at": datetime.now(UTC).isoformat(),
                "details": {},
            }
        )
        digest = body_hash(body)
        # Records of other incidents travel as their body hash alone.
        shown = body if item or seq % 50 == 0 else None
        row = LedgerRow(seq, prev, shown, digest, record_hash(prev, digest))
        rows.append(row)
        prev = row.record_hash
    return rows


def verification(
    bundle_mb: int, count: int, records: int, repeat: int, workdir: Path
) -> dict[str, Any]:
    key = Keypair(Ed25519PrivateKey.generate())
    size = bundle_mb * MB // count
    blobs = [os.urandom(size) for _ in range(count)]
    metas = [
        {
            "id": i + 1,
            "kind": "file",
            "name": f"blob-{i + 1}.bin",
            "sha256": hashlib.sha256(b).hexdigest(),
            "size": size,
        }
        for i, b in enumerate(blobs)
    ]
    ledger = _ledger(metas, max(records, count))
    message = checkpoint_message(
        seq=ledger[-1].seq,
        head=ledger[-1].record_hash,
        at="2026-11-30T00:00:00+00:00",
        key=key.fingerprint,
    )
    path = workdir / "bench-bundle.zip"
    with path.open("wb") as handle:
        write_bundle(
            handle,
            incident={"id": 1, "title": "bench"},
            exported={"by": "bench"},
            items=[
                BundleItem(meta=m, read=lambda b=b: b) for m, b in zip(metas, blobs, strict=True)
            ],
            ledger=ledger,
            checkpoint_message=message,
            checkpoint_signature=key.sign(message.encode()),
            key=key,
        )
    del blobs
    pem = key.public_pem().encode()
    best, verdict = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        verdict = verify_bundle(path, pubkey=pem)
        best = min(best, time.perf_counter() - start)
    assert verdict is not None and verdict.ok, verdict
    path.unlink()
    return {
        "bundle_bytes": verdict.bytes,
        "items": count,
        "ledger_records": len(ledger),
        "seconds": round(best, 3),
        "mb_per_s": round(verdict.bytes / MB / best, 1),
    }


def _content(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def generate(path: Path, rows: int, needles: int, seed: int = 7) -> float:
    """Fill a fresh installation's database with `rows` interactions; return seconds."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    rng = random.Random(seed)
    needle_rows = set(rng.sample(range(rows), needles))
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    fmt = "%Y-%m-%d %H:%M:%S.%f"

    # Pools of message JSON, picked by row number: generating 1M rows stays fast.
    prompts = [_content(rng, 18) for _ in range(997)]
    answers = [
        json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": _content(rng, 22)}]}]
        )
        for _ in range(1009)
    ]
    notes = [_content(rng, 4) for _ in range(101)]
    base = t0.timestamp()

    def stamp(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime(fmt)

    def produce() -> Any:
        for i in range(rows):
            start = base + 0.25 * i
            prompt = f"{prompts[i % 997]} (ticket {i})"
            if i in needle_rows:
                prompt += " my key is sk-live-" + "".join(rng.choices("abcdef0123456789", k=32))
            tool = i % 7 == 0
            input_messages = (
                '[{"role":"user","parts":[{"type":"text","content":' + json.dumps(prompt) + "}]}]"
            )
            arguments = f'{{"order":{i},"note":"{notes[i % 101]}"}}' if tool else None
            yield (
                f"{i:032x}",
                f"{i:016x}",
                "chat",
                "genai",
                "execute_tool" if tool else "chat",
                f"conv-{i // 8}",
                f"user-{i % 5000}",
                input_messages,
                answers[i % 1009],
                "lookup_order" if tool else None,
                arguments,
                "full",
                stamp(start),
                stamp(start + 0.3),
                300.0,
                stamp(start),
            )

    started = time.perf_counter()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=DELETE")  # a bulk load, not through the WAL
    connection.execute("PRAGMA synchronous=OFF")
    with connection:
        connection.executemany(
            "INSERT INTO interactions (trace_id, span_id, name, schema, operation, "
            "conversation_id, user_id, input_messages, output_messages, tool_name, "
            "tool_arguments, content_policy, start_time, end_time, latency_ms, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            produce(),
        )
    connection.close()
    return time.perf_counter() - started


def hunts(path: Path) -> list[dict[str, Any]]:
    db = Database(make_engine(f"sqlite:///{path}"))
    actor = Principal(name="bench", role=Role.admin)
    results = []
    try:
        for label, query in (
            ("regex", {"pattern": r"sk-live-[0-9a-f]{32}"}),
            ("text", {"text": "my key is sk-live-"}),
            ("no match", {"pattern": r"(?i)ignore (all )?previous instructions"}),
        ):
            with db.transaction() as session:
                row = hunt.create_hunt(session, data=HuntIn(**query), actor=actor)  # type: ignore[arg-type]
                session.commit()
            start = time.perf_counter()
            done = hunt.run_hunt(db, hunt_id=row.id, workers=Settings().hunt_workers)
            elapsed = time.perf_counter() - start
            results.append(
                {
                    "hunt": label,
                    "query": next(iter(query.values())),
                    "rows": done.scanned,
                    "matches": done.match_count,
                    "method": done.method,
                    "seconds": round(elapsed, 2),
                    "rows_per_s": round(done.scanned / elapsed),
                }
            )
    finally:
        db.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sha-mb", type=int, default=256)
    parser.add_argument("--bundle-mb", type=int, default=256)
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--needles", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="Keep the hunt database here (reused if present).")
    parser.add_argument("--skip-hunt", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from blastwall import wiring

    wiring.install()  # the pipeline's steps, as a server process makes them

    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    }
    with tempfile.TemporaryDirectory(prefix="bw-bench-evidence-") as tmp:
        workdir = Path(tmp)
        report["sha256_mb_per_s"] = round(sha256_speed(args.sha_mb, args.repeat), 1)
        report["verification"] = verification(
            args.bundle_mb, args.items, args.records, args.repeat, workdir
        )
        report["verification"]["ratio_to_sha256"] = round(
            report["verification"]["mb_per_s"] / report["sha256_mb_per_s"], 2
        )
        if not args.skip_hunt:
            path = args.db or workdir / "hunt.db"
            if path.exists():
                report["generated"] = "reused " + str(path)
            else:
                seconds = generate(path, args.rows, args.needles)
                report["generated"] = f"{args.rows} rows in {seconds:.1f} s"
            report["db_mb"] = round(path.stat().st_size / MB)
            report["hunts"] = hunts(path)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    print(f"machine: {report['machine']}")
    print(f"SHA-256 alone:   {report['sha256_mb_per_s']:8.1f} MB/s")
    v = report["verification"]
    print(
        f"bundle verify:   {v['mb_per_s']:8.1f} MB/s  ({v['bundle_bytes'] / MB:.0f} MB, "
        f"{v['items']} items, {v['ledger_records']} ledger records, {v['seconds']} s; "
        f"{v['ratio_to_sha256']:.0%} of SHA-256; goal >= 300 MB/s)"
    )
    if "hunts" in report:
        print(f"hunt database:   {report['generated']}, {report['db_mb']} MB")
        for h in report["hunts"]:
            print(
                f"hunt {h['hunt']:9} {h['seconds']:6.2f} s  {h['rows']} rows, "
                f"{h['matches']} matches, {h['rows_per_s']:,} rows/s, {h['method']}  (goal <= 5 s)"
            )


if __name__ == "__main__":
    main()
