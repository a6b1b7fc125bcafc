"""Correlation and severity, per scenario kind: Blastwall's correlator against an
Alertmanager-style model and, with --alertmanager, a real Prometheus Alertmanager, on the
same labelled scenario streams (`blastwall.correlation.scenarios`).

Blastwall: every signal is stored and correlated in a transaction of its own, as the ingest
paths do (`correlation.flows.correlate`, then commit), on a fresh SQLite file (or the
PostgreSQL database given), with the example inventory, the scenario's maintenance windows
and snooze declared. Scenario time drives the correlator's clock; the time each signal takes
to be stored with its candidate is measured on the wall clock. It pages when it opens an
incident at once; a candidate waiting for triage pages nobody (an escalation is counted).

Model: Alertmanager's grouping computed in process (group by alert name and system,
group_wait 30 s, group_interval 5 min, resolve_timeout 5 min for signals that never resolve
themselves), the maintenance windows and snooze as silences; each notification of a group
with a warning or worse pages.

Alertmanager (--alertmanager): the same stream posted, time-compressed (--compress), to a
real `prometheus-alertmanager` on 127.0.0.1 (route group_by alertname and system, group_wait
30 s, group_interval 5 min, repeat_interval 4 h, all divided by the compression; warning and
worse to a pager receiver, info to a ticket one; the maintenance windows and snooze as
silences; the usual inhibition of a warning by a critical alert of the same name and
system). Its notifications are recorded by a webhook receiver on 127.0.0.1; each firing one
to the pager is a page. Skipped, with a message, when the binary is missing.

Figures per scenario kind (each true incident has a kind; noise has its own):
  paged recall    true incidents that must page with a page of their own
  false pages     pages of candidates (groups) made mostly of the kind's noise
  precision       true pages over all pages, per kind and over the stream
  duplicates      extra candidates (groups) per true incident
  time to page    first signal of the incident to its first page, p50 and max (s)
  late            the latest page after the moment the evidence would convince a human
                  (`Incident.convinced_at`); <= 0: on time
Overall also: candidate precision, incident recall (a candidate of its own), signals/s.

    .venv/bin/python bench/correlation.py [--rounds 5] [--seeds 7] [--kinds a,b]
        [--stray-warnings 0] [--database-url URL] [--alertmanager [--compress 600]] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from blastwall.auth.roles import Principal, Role
from blastwall.correlation import replay
from blastwall.correlation.scenarios import KINDS, Event, Scenario, generate
from blastwall.db import Database, make_engine
from blastwall.inventory import service as inventory
from blastwall.inventory.loader import load_path
from blastwall.migrate import upgrade
from blastwall.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import free_port, log, percentile, prepare_postgres

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory"
RESPONDER = Principal(name="bench-responder", role=Role.admin)
GOALS = {"paged_recall": 1.0, "false_pages": 1, "duplicates": 0.05, "late": 0.0}
SEVERITY_RANK = {"info": 0, "warning": 1, "high": 2, "critical": 3}
NOISE_KINDS = ("benign_warnings", "noise", "stray")


@dataclass
class Outcome:
    """Each candidate's (group's) signals: their truth labels and kinds; pages, times."""

    candidates: dict[Any, list[str | None]] = field(default_factory=lambda: defaultdict(list))
    kinds: dict[Any, list[str]] = field(default_factory=lambda: defaultdict(list))
    candidate_at: dict[Any, float] = field(default_factory=dict)  # scenario seconds
    pages: list[tuple[Any, float]] = field(default_factory=list)  # candidate, when
    escalated: set[Any] = field(default_factory=set)
    wall: float = 0.0
    signals: int = 0


# --- Blastwall ------------------------------------------------------------------------------


def blastwall_run(scenario: Scenario, db: Database, start: datetime) -> Outcome:
    out = Outcome()
    truth_of: dict[int, tuple[str | None, str]] = {}
    paged: set[int] = set()
    with db.transaction() as session:
        inventory.apply_specs(session, specs=[i.spec for i in load_path(EXAMPLES)], actor="bench")
        replay.declare(session, scenario, start=start, actor=RESPONDER)
    with db.transaction() as session:
        for r in replay.replay(session, scenario, start=start, actor=RESPONDER):
            out.wall += r.took
            out.signals += 1
            truth_of[r.signal_id] = (r.truth, r.kind)
            if r.candidate_id is not None:
                out.candidate_at.setdefault(r.candidate_id, r.at + r.took)
                if r.opened and r.candidate_id not in paged:
                    paged.add(r.candidate_id)
                    out.pages.append((r.candidate_id, r.at))
                if r.escalated:
                    out.escalated.add(r.candidate_id)
        for signal_id, candidate_id in replay.candidates_of(session, list(truth_of)).items():
            if candidate_id is not None:
                truth, kind = truth_of[signal_id]
                out.candidates[candidate_id].append(truth)
                out.kinds[candidate_id].append(kind)
    return out


# --- the Alertmanager model -----------------------------------------------------------------


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
                    out.pages.append((g.number, g.next_flush))
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
        alert = _identity(event)
        ends = float("inf") if event.alert else event.at + resolve_timeout
        if g.alerts.get(alert, -1.0) <= event.at:
            g.changed = True  # new, or firing again
        g.alerts[alert] = ends
        if SEVERITY_RANK[s["severity"]] > SEVERITY_RANK[g.severity]:
            g.severity = s["severity"]
        out.candidates[g.number].append(event.truth)
        out.kinds[g.number].append(event.kind)
        out.signals += 1
    flush_until(float("inf"))
    out.wall = time.perf_counter() - began
    return out


def _identity(event: Event) -> str:
    s = event.signal
    return event.alert or str(s.get("fingerprint") or s["kind"])


def _silenced(scenario: Scenario, event: Event) -> bool:
    s = event.signal
    for w in scenario.maintenance:
        if s.get("system") == w.system and w.start <= event.at < w.end:
            return True
    return any(all(s.get(k) == v for k, v in snooze.match.items()) for snooze in scenario.snoozes)


# --- a real Alertmanager --------------------------------------------------------------------

AM_CONFIG = """\
global:
  resolve_timeout: {resolve}
route:
  receiver: pager
  group_by: [alertname, system]
  group_wait: {wait}
  group_interval: {interval}
  repeat_interval: {repeat}
  routes:
    - receiver: tickets
      matchers: ['severity="info"']
receivers:
  - name: pager
    webhook_configs:
      - url: {hook}/pager
        send_resolved: true
  - name: tickets
    webhook_configs:
      - url: {hook}/tickets
        send_resolved: false
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"warning|info"']
    equal: [alertname, system]
"""


def alertmanager_binary() -> str | None:
    for candidate in (
        os.environ.get("BLASTWALL_TEST_ALERTMANAGER"),
        shutil.which("prometheus-alertmanager"),
        shutil.which("alertmanager"),
        "/usr/bin/prometheus-alertmanager",
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[float, str, dict[str, Any]]]
    lock: threading.Lock

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.received.append((time.monotonic(), self.path, json.loads(body or b"{}")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def _receiver() -> Iterator[tuple[str, list[tuple[float, str, dict[str, Any]]]]]:
    received: list[tuple[float, str, dict[str, Any]]] = []
    handler = type("Hook", (_Hook,), {"received": received, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def alertmanager_run(scenario: Scenario, binary: str, compress: float) -> Outcome:
    """Post the stream to a real Alertmanager, `compress` times faster than scenario time,
    and read its notifications back as pages."""
    out = Outcome()
    with tempfile.TemporaryDirectory() as tmp, _receiver() as (hook, received):
        config = Path(tmp) / "alertmanager.yml"
        config.write_text(
            AM_CONFIG.format(
                resolve=_duration(300 / compress),
                wait=_duration(30 / compress),
                interval=_duration(300 / compress),
                repeat=_duration(4 * 3600 / compress),
                hook=hook,
            )
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        logfile = Path(tmp) / "alertmanager.log"
        with logfile.open("wb") as sink:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.path={Path(tmp) / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            with httpx.Client(base_url=url, timeout=5) as client:
                _ready(client, process, logfile)
                start_wall, start_mono = datetime.now(UTC), time.monotonic()
                _silences(client, scenario, start_wall, compress)
                _post_stream(client, scenario, start_wall, start_mono, compress, out)
                time.sleep(2 * 330 / compress + 1)  # the last group_wait and group_interval
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        _read_notifications(received, start_mono, compress, out)
    return out


def _ready(client: httpx.Client, process: subprocess.Popen[bytes], logfile: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"Alertmanager exited:\n{logfile.read_text(errors='replace')}")
        try:
            if client.get("/-/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"Alertmanager not ready after 30 s:\n{logfile.read_text(errors='replace')}")


def _silences(client: httpx.Client, scenario: Scenario, start: datetime, compress: float) -> None:
    def silence(matchers: dict[str, str], begin: float, end: float, why: str) -> None:
        answer = client.post(
            "/api/v2/silences",
            json={
                "matchers": [
                    {"name": k, "value": v, "isRegex": False, "isEqual": True}
                    for k, v in matchers.items()
                ],
                "startsAt": _rfc3339(start + timedelta(seconds=begin / compress)),
                "endsAt": _rfc3339(start + timedelta(seconds=end / compress)),
                "createdBy": "bench",
                "comment": why,
            },
        )
        answer.raise_for_status()

    for w in scenario.maintenance:
        silence({"system": w.system}, max(w.start, 0.001), w.end, w.reason)
    end = scenario.events[-1].at + 86400
    for s in scenario.snoozes:
        silence(s.match, 0.001, end, s.reason)


def _post_stream(
    client: httpx.Client,
    scenario: Scenario,
    start_wall: datetime,
    start_mono: float,
    compress: float,
    out: Outcome,
) -> None:
    firing: dict[str, dict[str, Any]] = {}
    for event in scenario.events:
        delay = start_mono + event.at / compress - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = start_wall + timedelta(seconds=time.monotonic() - start_mono)
        if event.action == "resolve" and event.alert in firing:
            alert = firing.pop(event.alert)
            alert["endsAt"] = _rfc3339(now)
            client.post("/api/v2/alerts", json=[alert]).raise_for_status()
            continue
        if event.action != "signal":
            continue
        s = event.signal
        labels = {
            "alertname": s["kind"],
            "system": s.get("system") or "-",
            "severity": s["severity"],
            "alert_id": _identity(event),
        }
        if s.get("detector"):
            labels["detector"] = s["detector"]
        lasts = 86400.0 if event.alert else 300 / compress  # alerts last until resolved
        alert = {
            "labels": labels,
            "annotations": {
                "truth": event.truth or "",
                "kind": event.kind,
                "summary": s["summary"],
            },
            "startsAt": _rfc3339(now),
            "endsAt": _rfc3339(now + timedelta(seconds=lasts)),
        }
        if event.alert:
            firing[event.alert] = alert
        client.post("/api/v2/alerts", json=[alert]).raise_for_status()
        out.signals += 1


def _read_notifications(
    received: list[tuple[float, str, dict[str, Any]]],
    start_mono: float,
    compress: float,
    out: Outcome,
) -> None:
    """Pages from the pager's firing notifications; a group (candidate) is one episode of
    a group key, from its first notification to the one that says every alert resolved."""
    episode: dict[str, int] = defaultdict(int)
    ended: dict[str, bool] = {}
    seen: dict[Any, set[tuple[str, str]]] = defaultdict(set)
    for at, path, body in sorted(received, key=lambda r: r[0]):
        key = str(body.get("groupKey"))
        if ended.get(key, False):
            episode[key] += 1
        candidate = (key, episode[key])
        ended[key] = body.get("status") == "resolved"
        t = (at - start_mono) * compress
        out.candidate_at.setdefault(candidate, t)
        for alert in body.get("alerts") or []:
            annotations = alert.get("annotations") or {}
            ident = (str(alert.get("fingerprint")), annotations.get("truth", ""))
            if ident not in seen[candidate]:
                seen[candidate].add(ident)
                out.candidates[candidate].append(annotations.get("truth") or None)
                out.kinds[candidate].append(annotations.get("kind") or "noise")
        if path == "/pager" and body.get("status") == "firing":
            out.pages.append((candidate, t))


# --- figures --------------------------------------------------------------------------------


def figures(scenario: Scenario, out: Outcome) -> dict[str, Any]:
    """The stream's figures, and per scenario kind."""
    majority = {c: Counter(labels).most_common(1)[0][0] for c, labels in out.candidates.items()}
    kind_of = {
        c: (
            scenario.incidents[t].kind
            if t is not None
            else Counter(
                k for k, lab in zip(out.kinds[c], out.candidates[c], strict=True) if lab is None
            ).most_common(1)[0][0]
        )
        for c, t in majority.items()
    }
    first_signal: dict[str, float] = {}
    for e in scenario.events:
        if e.action == "signal" and e.truth is not None:
            first_signal.setdefault(e.truth, e.at)
    first_page: dict[str, float] = {}
    for c, at in out.pages:
        t = majority.get(c)
        if t is not None and (t not in first_page or at < first_page[t]):
            first_page[t] = at
    per_incident = Counter(t for t in majority.values() if t is not None)
    kinds = [
        k
        for k in (*KINDS, *NOISE_KINDS)
        if any(v == k for v in kind_of.values())
        or any(i.kind == k for i in scenario.incidents.values())
    ]
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        mine = [i for i in scenario.incidents.values() if i.kind == kind]
        must = [i for i in mine if i.page]
        pages = [(c, at) for c, at in out.pages if kind_of.get(c) == kind]
        true_pages = sum(1 for c, _ in pages if majority.get(c) is not None)
        delays = sorted(
            first_page[i.name] - first_signal[i.name] for i in must if i.name in first_page
        )
        late = [
            round(first_page[i.name] - i.convinced_at, 1)
            for i in must
            if i.name in first_page and i.convinced_at is not None
        ]
        per_kind[kind] = {
            "incidents": len(mine),
            "must_page": len(must),
            "paged": sum(1 for i in must if i.name in first_page),
            "paged_recall": sum(1 for i in must if i.name in first_page) / len(must)
            if must
            else None,
            "pages": len(pages),
            "false_pages": len(pages) - true_pages,
            "precision": true_pages / len(pages) if pages else None,
            "duplicates": sum(max(per_incident[i.name] - 1, 0) for i in mine) / len(mine)
            if mine
            else None,
            "escalated": sum(1 for c in out.escalated if kind_of.get(c) == kind),
            "time_to_page_p50": percentile(delays, 50) if delays else None,
            "time_to_page_max": delays[-1] if delays else None,
            "late": max(late) if late else None,
        }
    n = len(scenario.incidents)
    must_all = [i for i in scenario.incidents.values() if i.page]
    false_pages = sum(1 for c, _ in out.pages if majority.get(c) is None)
    true_candidates = [c for c, t in majority.items() if t is not None]
    to_candidate = sorted(
        min(out.candidate_at[c] for c in true_candidates if majority[c] == name) - first
        for name, first in first_signal.items()
        if per_incident[name]
    )
    lates = [v["late"] for v in per_kind.values() if v["late"] is not None]
    return {
        "candidates": len(majority),
        "precision": len(true_candidates) / len(majority) if majority else 0.0,
        "recall": len(per_incident) / n,
        "paged_recall": sum(1 for i in must_all if i.name in first_page) / len(must_all),
        "duplicates": sum(v - 1 for v in per_incident.values()) / n,
        "pages": len(out.pages),
        "false_pages": false_pages,
        "page_precision": (len(out.pages) - false_pages) / len(out.pages) if out.pages else 0.0,
        "escalated": len(out.escalated),
        "late": max(lates) if lates else 0.0,
        "p50": percentile(to_candidate, 50),
        "p99": percentile(to_candidate, 99),
        "signals_per_s": out.signals / out.wall if out.wall else None,
        "kinds": per_kind,
    }


# --- the run --------------------------------------------------------------------------------


def run_blastwall(scenario: Scenario, database_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.db"
        if database_url:
            prepare_postgres(database_url)  # refuses shared databases such as `test`
            url = Settings(database_url=database_url).resolved_database_url
        engine = make_engine(url)
        upgrade(engine)
        start = datetime.now(UTC).replace(microsecond=0)
        try:
            return figures(scenario, blastwall_run(scenario, Database(engine), start))
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--seeds", "--seed", default="7", help="comma-separated seeds, one stream each (7)"
    )
    parser.add_argument("--kinds", help=f"comma-separated scenario kinds (all: {','.join(KINDS)})")
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
    parser.add_argument(
        "--alertmanager",
        action="store_true",
        help="also feed each stream to a real prometheus-alertmanager (Debian package)",
    )
    parser.add_argument(
        "--compress",
        type=float,
        default=600,
        help="scenario seconds per real second for Alertmanager (600: 10 h in 60 s)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from blastwall import wiring

    wiring.install()  # the pipeline's steps, as a server process makes them
    kinds = tuple(args.kinds.split(",")) if args.kinds else None
    binary = alertmanager_binary() if args.alertmanager else None
    if args.alertmanager and binary is None:
        log(
            "Alertmanager: skipped, prometheus-alertmanager not found (Debian: apt-get install "
            "prometheus-alertmanager; or set BLASTWALL_TEST_ALERTMANAGER to the binary)"
        )
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        scenario = generate(
            seed=seed, rounds=args.rounds, stray_warnings=args.stray_warnings, kinds=kinds
        )
        row = {
            "seed": seed,
            "signals": scenario.signals,
            "incidents": len(scenario.incidents),
            "blastwall": run_blastwall(scenario, args.database_url),
            "model": figures(scenario, baseline(scenario)),
        }
        if binary is not None:
            log(f"seed {seed}: Alertmanager, {scenario.events[-1].at / args.compress:.0f} s")
            row["alertmanager"] = figures(
                scenario, alertmanager_run(scenario, binary, args.compress)
            )
        results.append(row)
        if not args.json:
            report(row, args.rounds)
    if args.json:
        print(json.dumps({"goals": GOALS, "streams": results}, indent=2))
    elif len(results) > 1:
        summary(results)


def _fmt(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def report(row: dict[str, Any], rounds: int) -> None:
    names = [n for n in ("blastwall", "model", "alertmanager") if n in row]
    print(
        f"\nseed {row['seed']}: {rounds} rounds, {row['signals']} signals, "
        f"{row['incidents']} true incidents"
    )
    overall = [
        ("candidates", "candidates", "{:.0f}"),
        ("candidate precision", "precision", "{:.3f}"),
        ("incident recall", "recall", "{:.3f}"),
        ("paged recall", "paged_recall", "{:.3f}"),
        ("duplicate ratio", "duplicates", "{:.3f}"),
        ("pages", "pages", "{:.0f}"),
        ("false pages", "false_pages", "{:.0f}"),
        ("page precision", "page_precision", "{:.3f}"),
        ("escalated", "escalated", "{:.0f}"),
        ("latest page after convinced (s)", "late", "{:.0f}"),
        ("time to candidate p50 (s)", "p50", "{:.3f}"),
        ("time to candidate p99 (s)", "p99", "{:.3f}"),
        ("signals/s", "signals_per_s", "{:.0f}"),
    ]
    print(f"{'':34}" + "".join(f"{n:>14}" for n in names))
    for label, key, fmt in overall:
        print(f"{label:34}" + "".join(f"{_fmt(row[n][key], fmt):>14}" for n in names))
    columns = [
        ("pages", "pages", "{:.0f}"),
        ("recall", "paged_recall", "{:.2f}"),
        ("false", "false_pages", "{:.0f}"),
        ("prec", "precision", "{:.2f}"),
        ("dup", "duplicates", "{:.2f}"),
        ("ttp50", "time_to_page_p50", "{:.0f}"),
        ("ttpmax", "time_to_page_max", "{:.0f}"),
        ("late", "late", "{:.0f}"),
    ]
    kinds = list(dict.fromkeys(k for n in names for k in row[n]["kinds"]))
    print(f"\n{'kind':24}{'':14}" + "".join(f"{c:>8}" for c, _, _ in columns) + f"{'n':>5}")
    for kind in kinds:
        for n in names:
            f = row[n]["kinds"].get(kind)
            if f is None:
                continue
            cells = "".join(f"{_fmt(f[k], fmt):>8}" for _, k, fmt in columns)
            print(f"{kind:24}{n:14}{cells}{f['incidents']:>5}")
    ours = row["blastwall"]
    met = (
        ours["paged_recall"] >= GOALS["paged_recall"]
        and ours["false_pages"] <= GOALS["false_pages"]
        and ours["duplicates"] <= GOALS["duplicates"]
        and ours["late"] <= GOALS["late"]
    )
    print(
        "goals (paged recall 1.0, at most 1 false page, duplicates <= 0.05, no page after the "
        f"evidence would convince a human): {'met' if met else 'NOT met'}"
    )


def summary(results: list[dict[str, Any]]) -> None:
    """The streams together: sums and worst cases, per system compared."""
    names = [n for n in ("blastwall", "model", "alertmanager") if n in results[0]]
    print(f"\nall {len(results)} streams (seeds {', '.join(str(r['seed']) for r in results)})")
    print(f"{'':34}" + "".join(f"{n:>14}" for n in names))
    rows: list[tuple[str, Callable[[list[dict[str, Any]]], float], str]] = [
        ("paged recall (worst)", lambda f: min(x["paged_recall"] for x in f), "{:.3f}"),
        ("false pages (total)", lambda f: sum(x["false_pages"] for x in f), "{:.0f}"),
        ("false pages (worst stream)", lambda f: max(x["false_pages"] for x in f), "{:.0f}"),
        ("duplicate ratio (worst)", lambda f: max(x["duplicates"] for x in f), "{:.3f}"),
        ("pages (total)", lambda f: sum(x["pages"] for x in f), "{:.0f}"),
        ("latest page after convinced (s)", lambda f: max(x["late"] for x in f), "{:.0f}"),
    ]
    for label, get, fmt in rows:
        print(
            f"{label:34}"
            + "".join(f"{fmt.format(get([r[n] for r in results])):>14}" for n in names)
        )


if __name__ == "__main__":
    main()
