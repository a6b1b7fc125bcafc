"""Correlation quality and speed: Blastwall's correlator against an Alertmanager-style
baseline, on the same labelled scenario stream (`blastwall.correlation.scenarios`).

Blastwall: every signal is stored and correlated in a transaction of its own, as the ingest
paths do (`correlation.flows.correlate`, then commit), on a fresh SQLite file (or the
PostgreSQL database given), with the example inventory, the scenario's maintenance windows
and snooze declared. Scenario time drives the correlator's clock; the time each signal takes
to be stored with its candidate is measured on the wall clock.

Baseline: Alertmanager's grouping (group by alert name and system, group_wait 30 s,
group_interval 5 min, resolve_timeout 5 min for signals that never resolve themselves),
with the same maintenance windows and snooze as silences. Each notification of a group
with a warning or worse pages; a group is its candidate.

Figures, for both:
  candidate precision   candidates whose signals mostly belong to a true incident
  incident recall       true incidents that are the majority of at least one candidate
  duplicate ratio       extra candidates per true incident
  false page rate       pages for no true incident, over all pages (Blastwall pages when it
                        opens an incident at once; candidates waiting for triage do not page)
  time to candidate     first signal of a true incident to its first candidate (p50, p99)
  signals/s             signals processed per second of wall time

    .venv/bin/python bench/correlation.py [--rounds 5] [--seed 7] [--stray-warnings 0]
        [--database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blastwall.auth.roles import Principal, Role
from blastwall.correlation import replay
from blastwall.correlation.scenarios import Event, Scenario, generate
from blastwall.db import Database, make_engine
from blastwall.inventory import service as inventory
from blastwall.inventory.loader import load_path
from blastwall.migrate import upgrade
from blastwall.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import percentile, prepare_postgres

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory"
RESPONDER = Principal(name="bench-responder", role=Role.admin)
GOALS = {"precision": 0.95, "recall": 0.95, "duplicates": 0.05, "p99": 1.0}
SEVERITY_RANK = {"info": 0, "warning": 1, "high": 2, "critical": 3}


@dataclass
class Outcome:
    """Each candidate's signals (their truth labels), pages, times and speed."""

    candidates: dict[Any, list[str | None]] = field(default_factory=lambda: defaultdict(list))
    candidate_at: dict[Any, float] = field(default_factory=dict)  # scenario seconds
    pages: list[Any] = field(default_factory=list)  # candidate of each page
    wall: float = 0.0
    signals: int = 0


# --- Blastwall ------------------------------------------------------------------------------


def blastwall_run(scenario: Scenario, db: Database, start: datetime) -> Outcome:
    out = Outcome()
    truth_of: dict[int, str | None] = {}
    with db.session() as session:
        inventory.apply_specs(session, specs=[i.spec for i in load_path(EXAMPLES)], actor="bench")
        replay.declare(session, scenario, start=start, actor=RESPONDER)
    with db.session() as session:
        for r in replay.replay(session, scenario, start=start, actor=RESPONDER):
            out.wall += r.took
            out.signals += 1
            truth_of[r.signal_id] = r.truth
            if r.candidate_id is not None:
                out.candidate_at.setdefault(r.candidate_id, r.at + r.took)
                if r.opened and r.candidate_id not in out.pages:
                    out.pages.append(r.candidate_id)
        for signal_id, candidate_id in replay.candidates_of(session, list(truth_of)).items():
            if candidate_id is not None:
                out.candidates[candidate_id].append(truth_of[signal_id])
    return out


# --- the baseline ---------------------------------------------------------------------------


@dataclass
class _Group:
    key: tuple[str, str]
    number: int
    next_flush: float
    alerts: dict[str, float] = field(default_factory=dict)  # alert -> ends at (inf: firing)
    changed: bool = True
    severity: str = "info"


def baseline(
    scenario: Scenario, wait: float = 30, interval: float = 300, resolve_timeout: float = 300
) -> Outcome:
    out = Outcome()
    began = time.perf_counter()
    groups: dict[tuple[str, str], _Group] = {}
    number = 0

    def flush_until(t: float) -> None:
        while True:
            due = [g for g in groups.values() if g.next_flush <= t]
            if not due:
                return
            g = min(due, key=lambda g: g.next_flush)
            if g.changed:
                out.candidate_at.setdefault(g.number, g.next_flush)
                if SEVERITY_RANK[g.severity] >= 1:
                    out.pages.append(g.number)
                g.changed = False
            if all(end <= g.next_flush for end in g.alerts.values()):
                del groups[g.key]  # every alert resolved and notified: the group ends
            else:
                g.next_flush += interval

    for event in scenario.events:
        flush_until(event.at)
        if event.action == "resolve" and event.alert:
            for g in groups.values():
                if event.alert in g.alerts and g.alerts[event.alert] > event.at:
                    g.alerts[event.alert], g.changed = event.at, True
            continue
        if event.action != "signal" or _silenced(scenario, event):
            continue
        s = event.signal
        key = (s["kind"], s.get("system") or "-")
        if key not in groups:
            number += 1
            groups[key] = _Group(key, number, event.at + wait)
        g = groups[key]
        alert = event.alert or f"{s.get('fingerprint') or s['kind']}"
        ends = float("inf") if event.alert else event.at + resolve_timeout
        if g.alerts.get(alert, -1.0) <= event.at:
            g.changed = True  # new, or firing again
        g.alerts[alert] = ends
        if SEVERITY_RANK[s["severity"]] > SEVERITY_RANK[g.severity]:
            g.severity = s["severity"]
        out.candidates[g.number].append(event.truth)
        out.signals += 1
    flush_until(float("inf"))
    out.wall = time.perf_counter() - began
    return out


def _silenced(scenario: Scenario, event: Event) -> bool:
    s = event.signal
    for w in scenario.maintenance:
        if s.get("system") == w.system and w.start <= event.at < w.end:
            return True
    return any(all(s.get(k) == v for k, v in snooze.match.items()) for snooze in scenario.snoozes)


# --- figures --------------------------------------------------------------------------------


def figures(scenario: Scenario, out: Outcome) -> dict[str, float]:
    majority = {c: Counter(labels).most_common(1)[0][0] for c, labels in out.candidates.items()}
    true_candidates = [c for c, t in majority.items() if t is not None]
    per_incident = Counter(majority[c] for c in true_candidates)
    first_signal: dict[str, float] = {}
    for e in scenario.events:
        if e.action == "signal" and e.truth is not None:
            first_signal.setdefault(e.truth, e.at)
    delays = sorted(
        min(out.candidate_at[c] for c in true_candidates if majority[c] == name) - first
        for name, first in first_signal.items()
        if per_incident[name]
    )
    n = len(scenario.incidents)
    false_pages = sum(1 for c in out.pages if majority.get(c) is None)
    return {
        "candidates": len(majority),
        "precision": len(true_candidates) / len(majority) if majority else 0.0,
        "recall": len(per_incident) / n,
        "duplicates": sum(v - 1 for v in per_incident.values()) / n,
        "pages": len(out.pages),
        "false_page_rate": false_pages / len(out.pages) if out.pages else 0.0,
        "p50": percentile(delays, 50),
        "p99": percentile(delays, 99),
        "signals_per_s": out.signals / out.wall if out.wall else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL of a database of its own (created if missing, emptied first)",
    )
    parser.add_argument(
        "--stray-warnings",
        type=int,
        default=0,
        help="benign one-off warnings per round, besides the usual noise (default 0)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scenario = generate(seed=args.seed, rounds=args.rounds, stray_warnings=args.stray_warnings)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        if args.database_url:
            prepare_postgres(args.database_url)  # refuses shared databases such as `test`
            url = Settings(database_url=args.database_url).resolved_database_url
        engine = make_engine(url)
        upgrade(engine)
        start = datetime.now(UTC).replace(microsecond=0)
        ours = figures(scenario, blastwall_run(scenario, Database(engine), start))
        engine.dispose()
    theirs = figures(scenario, baseline(scenario))
    report(scenario, ours, theirs, args.json)


def report(
    scenario: Scenario, ours: dict[str, float], theirs: dict[str, float], as_json: bool
) -> None:
    if as_json:
        print(json.dumps({"blastwall": ours, "baseline": theirs, "goals": GOALS}, indent=2))
        return
    print(
        f"scenario: seed {scenario.seed}, {scenario.rounds} rounds, {scenario.signals} "
        f"signals, {len(scenario.incidents)} true incidents"
    )
    rows = [
        ("candidates", "candidates", "{:.0f}"),
        ("candidate precision", "precision", "{:.3f}"),
        ("incident recall", "recall", "{:.3f}"),
        ("duplicate ratio", "duplicates", "{:.3f}"),
        ("pages", "pages", "{:.0f}"),
        ("false page rate", "false_page_rate", "{:.3f}"),
        ("time to candidate p50 (s)", "p50", "{:.3f}"),
        ("time to candidate p99 (s)", "p99", "{:.3f}"),
        ("signals/s", "signals_per_s", "{:.0f}"),
    ]
    print(f"{'':28}{'blastwall':>12}{'baseline':>12}")
    for label, key, fmt in rows:
        print(f"{label:28}{fmt.format(ours[key]):>12}{fmt.format(theirs[key]):>12}")
    met = (
        ours["precision"] >= GOALS["precision"]
        and ours["recall"] >= GOALS["recall"]
        and ours["duplicates"] <= GOALS["duplicates"]
        and ours["p99"] <= GOALS["p99"]
        and ours["duplicates"] < theirs["duplicates"]
        and ours["false_page_rate"] < theirs["false_page_rate"]
    )
    print(
        "goals (precision >= 0.95, recall >= 0.95, duplicates <= 0.05, p99 <= 1 s, better "
        f"than the baseline on duplicates and false pages): {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
