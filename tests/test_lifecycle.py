"""Property tests of the incident status machine (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from blastwall.errors import InvalidTransition
from blastwall.incidents.lifecycle import STAMPS, TRANSITIONS, Milestone, Status, check_transition

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
        if Milestone.resolved in s:
            assert Status.resolved in self.history
        if Milestone.closed in s:
            assert s[Milestone.resolved] < s[Milestone.closed]
        if self.status in (Status.investigating, Status.contained, Status.resolved):
            assert Milestone.acknowledged in s


TestIncidentMachine = IncidentMachine.TestCase
TestIncidentMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
