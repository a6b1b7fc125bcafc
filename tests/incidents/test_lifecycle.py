"""Property tests of the incident status machine (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from blastwall.errors import InvalidTransition
from blastwall.incidents.lifecycle import (
    CLEARS,
    STAMPS,
    TRANSITIONS,
    Milestone,
    Status,
    check_transition,
    cleared,
)

FINAL = {Status.closed, Status.merged}


@given(st.sampled_from(Status), st.sampled_from(Status))
def test_a_move_is_allowed_exactly_when_declared(current: Status, requested: Status) -> None:
    if requested in TRANSITIONS[current]:
        assert check_transition(current, requested) == STAMPS[requested]
    else:
        try:
            check_transition(current, requested)
        except InvalidTransition as exc:
            assert exc.allowed == [s.value for s in TRANSITIONS[current]]
            assert requested.value in exc.detail and current.value in exc.detail
        else:
            raise AssertionError(f"{current} -> {requested} should be refused")


def test_every_status_is_reachable_from_triage() -> None:
    seen = {Status.triage}
    frontier = [Status.triage]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(Status)


class IncidentMachine(RuleBasedStateMachine):
    """Random walks of status changes keep the milestones consistent."""

    def __init__(self) -> None:
        super().__init__()
        self.status = Status.triage
        self.stamped: dict[Milestone, int] = {Milestone.detected: 0}
        self.clock = 0
        self.history = [Status.triage]

    @rule(requested=st.sampled_from(Status))
    def move(self, requested: Status) -> None:
        self.clock += 1
        try:
            reached = check_transition(self.status, requested)
        except InvalidTransition:
            assert requested not in TRANSITIONS[self.status]
            return
        for milestone in cleared(self.status, requested):
            self.stamped.pop(milestone, None)
        for milestone in reached:
            self.stamped.setdefault(milestone, self.clock)
        self.status = requested
        self.history.append(requested)

    @invariant()
    def final_statuses_stay_final(self) -> None:
        if self.status in FINAL:
            assert TRANSITIONS[self.status] == ()

    @invariant()
    def milestones_follow_the_path(self) -> None:
        s = self.stamped
        if Milestone.contained in s:
            assert Status.contained in self.history or Status.recovering in self.history
            assert s[Milestone.acknowledged] <= s[Milestone.contained]
        if Milestone.mitigated in s:
            assert Status.recovering in self.history or Status.resolved in self.history
            assert s[Milestone.acknowledged] <= s[Milestone.mitigated]
        if Milestone.resolved in s:
            assert Status.resolved in self.history
            assert s[Milestone.mitigated] <= s[Milestone.resolved]
        if Milestone.closed in s:
            assert s[Milestone.resolved] < s[Milestone.closed]
        if self.status in (Status.investigating, Status.contained, Status.resolved):
            assert Milestone.acknowledged in s

    @invariant()
    def milestones_hold_for_the_status(self) -> None:
        """The milestones a status implies are set; those taken back are not."""
        for milestone in STAMPS[self.status]:
            assert milestone in self.stamped
        if self.status is Status.investigating and len(self.history) > 1:
            previous = self.history[-2]
            for milestone in CLEARS.get((previous, self.status), ()):
                assert milestone not in self.stamped


TestIncidentMachine = IncidentMachine.TestCase
TestIncidentMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
