"""Correlation as signals arrive: each signal joins its group and its candidate in the
transaction that stores it, so a committed signal already has both. No batch loop.

    signal ─► fingerprint ─► group (count, last seen; a recurrence opens a linked group)
                               │
              held back? ◄─────┤  maintenance window, snooze
                               ▼
          candidate of an earlier signal of the same trace or conversation, or of
          the group, or of an inhibiting outage, or of the key (system + archetype,
          shared component, reported conversation or system)
                               ▼
          severity policy (evidence first; the inventory raises what shows impact)
                               ▼
          at or above the threshold: an incident opens at once; below it, still growing
          after the policy's time: escalated to the triage owner (recorded and logged)

A signal joined by trace or conversation may carry another archetype: the strongest signal
(the one the policy rates gravest alone) gives the candidate its archetype, and an open
incident may be raised. What each signal shows (reports, success, leaks, confidence) is
kept on the candidate by `evidence.py` for the policy's evidence factors. Triage by people
(accept, decline, merge) and escalation are in `triage.py`.

    run         a call's policy, time and lookups
    grouping    a signal's group, noise rules, the candidate it joins or starts
    deciding    a candidate takes the signal: assessment, incident, opening, escalation
    collecting  the evidence a joining signal adds to an incident
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from blastwall.correlation import links, matching, service
from blastwall.correlation.flows.grouping import Correlating
from blastwall.correlation.flows.run import CORRELATOR
from blastwall.correlation.models import SignalGroup
from blastwall.correlation.policy import Policy, current_policy
from blastwall.db import utcnow
from blastwall.pipeline import SignalsRaised, SignalsResolved
from blastwall.signals.models import Signal

__all__ = [
    "CORRELATOR",
    "correlate",
    "current_policy",
    "resolve",
    "signals_raised",
    "signals_resolved",
]


def correlate(
    session: Session,
    signals: Sequence[Signal],
    *,
    now: datetime | None = None,
    policy: Policy,
    evidence_cap: int = 0,
) -> None:
    """Give each new signal its group and, where one applies, its candidate, in the
    caller's transaction. Signals that have a group already are left as they are.
    `evidence_cap`: the interactions a group's repeats add to an incident's evidence, at
    most (the setting `evidence_repeat_cap`, which `blastwall.wiring` passes)."""
    todo = [s for s in signals if s.group_id is None]
    if not todo:
        return
    session.flush()
    run = Correlating(session, policy, now or utcnow(), evidence_cap)
    prints = [matching.fingerprint(run.policy, s) for s in todo]
    keys = [run.key(s) for s in todo]
    shared = [f"{by}:{value}" for s in todo for by, value in links.shared_ids(s)]
    service.lock(session, prints + [k[0] for k in keys] + shared)
    for signal, fingerprint, key in zip(todo, prints, keys, strict=True):
        run.one(signal, fingerprint, key)
    session.flush()


def signals_raised(
    session: Session, event: SignalsRaised, *, policy_path: Path | None, evidence_cap: int
) -> None:
    """The pipeline's correlation step: correlate the signals just stored, under the
    event's policy or else the one in force (the file `policy_path`, or the defaults)."""
    policy = event.policy if isinstance(event.policy, Policy) else current_policy(policy_path)
    correlate(session, event.signals, now=event.now, policy=policy, evidence_cap=evidence_cap)


def signals_resolved(session: Session, event: SignalsResolved) -> None:
    """The pipeline's step for signals that stopped firing."""
    resolve(session, event.signals, now=event.now)


def resolve(session: Session, signals: Sequence[Signal], *, now: datetime | None = None) -> None:
    """Mark the groups of resolved signals (an alert's resolution) resolved: after the
    policy's quiet period they take no more signals; a return opens a linked group. The
    quiet period counts from when Blastwall learned of the resolution, like every other
    correlation time (the sender's clock is not trusted)."""
    now = now or utcnow()
    for signal in signals:
        if signal.group_id is None:
            continue
        group = session.get(SignalGroup, signal.group_id)
        if group is not None and group.resolved_at is None:
            group.resolved_at = now
