"""The incident status machine and the milestones each status stamps.

    triage ─► investigating ─► contained ─► recovering ─► resolved ─► closed
      │  ╲          │  ▲            │            │            │
      │   ╲         │  └────────────┴────────────┴────────────┘  (reopen, relapse)
      ▼    ▼        ▼
   declined merged  merged

A declined incident can be reopened into triage; merged and closed are final.

Milestones are the times the incident reached a point of its response: `detected`,
`acknowledged`, `contained` (the harm can spread no further: a containment control is in
force, or people say so), `mitigated` (the harm is stopped and recovery is under way: the
status reached `recovering`, or `resolved` straight away), `resolved` and `closed`. A
status stamps the milestones it implies the first time; moving back (containment failed,
a relapse, a reopened incident) clears the ones that no longer hold, so that the next time
they are reached is the one measured.
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
    mitigated = "mitigated"
    resolved = "resolved"
    closed = "closed"


S = Status
M = Milestone
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

# Reaching a status stamps these milestones, each only when it is not set.
STAMPS: dict[Status, tuple[Milestone, ...]] = {
    S.triage: (),
    S.investigating: (M.acknowledged,),
    S.contained: (M.acknowledged, M.contained),
    S.recovering: (M.acknowledged, M.contained, M.mitigated),
    S.resolved: (M.acknowledged, M.mitigated, M.resolved),
    S.closed: (M.closed,),
    S.declined: (),
    S.merged: (),
}

# Moving back clears the milestones that no longer hold.
CLEARS: dict[tuple[Status, Status], tuple[Milestone, ...]] = {
    (S.contained, S.investigating): (M.contained,),  # containment failed
    (S.recovering, S.investigating): (M.contained, M.mitigated),  # a relapse
    (S.resolved, S.investigating): (M.resolved,),  # reopened
}


def allowed(current: Status) -> list[str]:
    return [s.value for s in TRANSITIONS[current]]


def check_transition(current: Status, requested: Status) -> tuple[Milestone, ...]:
    """The milestones reached by moving from `current` to `requested`; InvalidTransition if the
    move is not allowed."""
    if requested not in TRANSITIONS[current]:
        raise InvalidTransition(current.value, requested.value, allowed(current))
    return STAMPS[requested]


def cleared(current: Status, requested: Status) -> tuple[Milestone, ...]:
    """The milestones that no longer hold after moving from `current` to `requested`."""
    return CLEARS.get((current, requested), ())
