"""The incident status machine and the milestones each status stamps.

    triage ─► investigating ─► contained ─► recovering ─► resolved ─► closed
      │  ╲          │  ▲            │            │            │
      │   ╲         │  └────────────┴────────────┴────────────┘  (reopen, relapse)
      ▼    ▼        ▼
   declined merged  merged

A declined incident can be reopened into triage; merged and closed are final.
"""

from __future__ import annotations

from enum import StrEnum

from blastwall.errors import InvalidTransition


class Status(StrEnum):
    triage = "triage"
    investigating = "investigating"
    contained = "contained"
    recovering = "recovering"
    resolved = "resolved"
    closed = "closed"
    declined = "declined"
    merged = "merged"


class Milestone(StrEnum):
    detected = "detected"
    acknowledged = "acknowledged"
    contained = "contained"
    resolved = "resolved"
    closed = "closed"


S = Status
TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    S.triage: (S.investigating, S.contained, S.resolved, S.declined, S.merged),
    S.investigating: (S.contained, S.recovering, S.resolved, S.merged),
    S.contained: (S.investigating, S.recovering, S.resolved, S.merged),
    S.recovering: (S.investigating, S.resolved),
    S.resolved: (S.investigating, S.closed),
    S.closed: (),
    S.declined: (S.triage,),
    S.merged: (),
}

# Statuses that only a commander (or admin) may set: they end or redirect the incident.
DECISIONS = frozenset({S.closed, S.declined, S.merged})

# Reaching a status stamps these milestones, each only the first time.
STAMPS: dict[Status, tuple[Milestone, ...]] = {
    S.triage: (),
    S.investigating: (Milestone.acknowledged,),
    S.contained: (Milestone.acknowledged, Milestone.contained),
    S.recovering: (Milestone.acknowledged, Milestone.contained),
    S.resolved: (Milestone.acknowledged, Milestone.resolved),
    S.closed: (Milestone.closed,),
    S.declined: (),
    S.merged: (),
}


def allowed(current: Status) -> list[str]:
    return [s.value for s in TRANSITIONS[current]]


def check_transition(current: Status, requested: Status) -> tuple[Milestone, ...]:
    """The milestones reached by moving from `current` to `requested`; InvalidTransition if the
    move is not allowed."""
    if requested not in TRANSITIONS[current]:
        raise InvalidTransition(current.value, requested.value, allowed(current))
    return STAMPS[requested]
