"""Replaying a labelled scenario through the real correlator, on a clock of its own.

Each signal is stored and correlated in a transaction of its own, as the ingest paths do;
the scenario's maintenance windows and snoozes are declared first; at each `settle` event
the responders resolve the incidents carrying that true incident's signals. What happened to
each signal comes back as a `Replayed`, so that a benchmark or a drill can score it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal
from blastwall.correlation import flows, service
from blastwall.correlation.models import Candidate
from blastwall.correlation.policy import Policy, load_policy
from blastwall.correlation.scenarios import Event, Scenario
from blastwall.correlation.schemas import CandidateStatus, MaintenanceCreate, Match, SnoozeCreate
from blastwall.incidents import flows as incident_flows
from blastwall.incidents import service as incidents
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.schemas import StatusChange
from blastwall.signals.models import Signal
from blastwall.signals.schemas import SignalStatus


@dataclass(frozen=True)
class Replayed:
    """One signal of the scenario, as the correlator left it."""

    signal_id: int
    truth: str | None
    at: float  # scenario seconds
    took: float  # wall seconds to store and correlate it, commit included
    candidate_id: int | None
    opened: bool  # its candidate had an incident opened at once by then
    escalated: bool = False  # its candidate was escalated to its triage owner by then
    kind: str = "noise"  # the scenario kind it comes from


def declare(session: Session, scenario: Scenario, *, start: datetime, actor: Principal) -> None:
    """The scenario's maintenance windows and snoozes, as noise rules."""
    for w in scenario.maintenance:
        service.add_maintenance(
            session,
            data=MaintenanceCreate(
                system=w.system,
                starts_at=start + timedelta(seconds=w.start),
                ends_at=start + timedelta(seconds=w.end),
                reason=w.reason,
            ),
            actor=actor,
        )
    end = start + timedelta(seconds=scenario.rounds * 86400)
    for s in scenario.snoozes:
        service.add_snooze(
            session,
            data=SnoozeCreate(match=Match.model_validate(s.match), reason=s.reason, until=end),
            actor=actor,
            now=start,
        )
    session.commit()


def replay(
    session: Session,
    scenario: Scenario,
    *,
    start: datetime,
    actor: Principal,
    policy: Policy | None = None,
) -> Iterator[Replayed]:
    """Feed the scenario's events to the correlator in order, scenario time from `start`."""
    policy = policy or load_policy()
    truth_of: dict[int, str | None] = {}
    firing: dict[str, Signal] = {}
    for event in scenario.events:
        now = start + timedelta(seconds=event.at)
        if event.action == "signal":
            began = time.perf_counter()
            row = to_signal(event, now)
            session.add(row)
            session.flush()
            if row.source == "report":
                row.reference = f"RPT-{row.id:06d}"
            flows.correlate(session, [row], now=now, policy=policy)
            session.commit()
            took = time.perf_counter() - began
            truth_of[row.id] = event.truth
            if event.alert:
                firing[event.alert] = row
            candidate = session.get(Candidate, row.candidate_id) if row.candidate_id else None
            opened = candidate is not None and candidate.status == CandidateStatus.opened
            escalated = candidate is not None and candidate.escalated_at is not None
            yield Replayed(
                row.id, event.truth, event.at, took, row.candidate_id, opened, escalated, event.kind
            )
        elif event.action == "resolve" and event.alert in firing:
            row = firing.pop(event.alert)
            row.status, row.ends_at = SignalStatus.resolved, now
            flows.resolve(session, [row], now=now)
            session.commit()
        elif event.action == "settle":
            _settle(session, [i for i, t in truth_of.items() if t == event.truth], actor)


def to_signal(event: Event, now: datetime) -> Signal:
    """The signal an event stands for, received at `now`."""
    fields: dict[str, Any] = {"attributes": {}, **event.signal}
    system = fields.pop("system", None)
    return Signal(
        system_id=system,
        system_ref=system,
        status="firing",
        created_by="scenario",
        created_at=now,
        updated_at=now,
        starts_at=now,
        **fields,
    )


def _settle(session: Session, signal_ids: list[int], actor: Principal) -> None:
    """The responders resolve the incidents that carry these signals."""
    found = session.scalars(
        select(Candidate.incident_id)
        .join(Signal, Signal.candidate_id == Candidate.id)
        .where(Signal.id.in_(signal_ids), Candidate.incident_id.is_not(None))
        .distinct()
    )
    for incident_id in list(found):
        if incident_id is not None and incidents.active_incident(session, incident_id=incident_id):
            incident_flows.change_status(
                session,
                incident_id=incident_id,
                change=StatusChange(status=Status.resolved, reason="scenario: settled"),
                actor=actor,
            )


def candidates_of(session: Session, signal_ids: list[int]) -> dict[int, int | None]:
    """Each signal's candidate as it stands now (joining may come after the signal)."""
    out: dict[int, int | None] = {}
    for start in range(0, len(signal_ids), 500):
        chunk = signal_ids[start : start + 500]
        rows = session.execute(select(Signal.id, Signal.candidate_id).where(Signal.id.in_(chunk)))
        out.update({signal_id: candidate_id for signal_id, candidate_id in rows})
    return out
