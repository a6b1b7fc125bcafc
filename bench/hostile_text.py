#!/usr/bin/env python3
"""Hostile text: how long the sensitive-data detector and the redactor take on texts built
to make a scanner slow, and how that time grows with the text.

The texts are the tests' (`HOSTILE` in tests/detection/test_detect_leakage.py and
tests/telemetry/test_redact.py), each at `--size` characters (default 200,000) and at half
that. The tests check, by counting calls rather than by a clock, that twice the text costs at
most twice the work; work inside one C call (a regular expression that backtracks) is not
counted there, and shows here.

Figures are CPU seconds of this process (`time.process_time`), the best of `--repeat` runs;
"x2" is the time at the full size over the time at half: about 2 for linear work, about 4
for quadratic. The goal the tests once timed: under 2 s for any one text at 200,000
characters (on a loaded machine; an idle one should be far below).

  python bench/hostile_text.py [--size 200000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blastwall.detection.base import Item  # noqa: E402
from blastwall.telemetry.redact import redact_text  # noqa: E402
from tests import test_detect_leakage, test_redact  # noqa: E402

GOAL = 2.0  # seconds, for one text of 200,000 characters


def best(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000, help="characters (default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    detector = test_detect_leakage._detector()
    subjects: list[tuple[str, dict[str, Callable[[int], str]], Callable[[str], object]]] = [
        ("detector", test_detect_leakage.HOSTILE, lambda t: detector.detect(Item(outputs=[t]))),
        ("redact_text", test_redact.HOSTILE, redact_text),
    ]
    rows: list[dict[str, Any]] = []
    for subject, texts, run in subjects:
        for name, make in texts.items():
            half, full = make(args.size // 2), make(args.size)
            run(half)  # caches filled
            small = best(partial(run, half), args.repeat)
            large = best(partial(run, full), args.repeat)
            rows.append(
                {
                    "subject": subject,
                    "text": name,
                    "chars": len(full),
                    "seconds": round(large, 4),
                    "half_seconds": round(small, 4),
                    "x2": round(large / small, 2) if small > 0.001 else None,
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'subject':12} {'text':24} {'chars':>8} {'s':>8} {'s (half)':>9} {'x2':>6}")
        for row in rows:
            x2 = "-" if row["x2"] is None else f"{row['x2']:.2f}"
            print(
                f"{row['subject']:12} {row['text']:24} {row['chars']:8} "
                f"{row['seconds']:8.4f} {row['half_seconds']:9.4f} {x2:>6}"
            )
    slowest = max(float(row["seconds"]) for row in rows)
    verdict = "PASS" if slowest < GOAL * args.size / 200_000 else "FAIL"
    print(f"{verdict}: slowest {slowest:.3f} s (goal under {GOAL} s at 200,000 characters)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
