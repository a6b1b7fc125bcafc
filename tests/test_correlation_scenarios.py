"""The labelled scenarios: reproducible, labelled, and correlated into one candidate per
true incident by the real correlator (quality, not timing: timings live in the bench)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal, Role
from blastwall.correlation import replay
from blastwall.correlation.models import Candidate
from blastwall.correlation.scenarios import generate

START = datetime(2026, 11, 20, tzinfo=UTC)


def test_scenarios_are_reproducible_and_labelled() -> None:
    one, again, other = generate(seed=3, rounds=2), generate(seed=3, rounds=2), generate(seed=4)
    assert one.events == again.events and one.events != other.events
    assert [e.at for e in one.events] == sorted(e.at for e in one.events)
    truths = {e.truth for e in one.events if e.truth is not None}
    assert truths == set(one.incidents) and len(one.incidents) == 8
    assert any(e.truth is None for e in one.events)  # noise is in the stream
    assert {e.action for e in one.events} == {"signal", "resolve", "settle"}
    with pytest.raises(ValueError, match="at least one round"):
        generate(rounds=0)


def test_one_candidate_per_true_incident(session: Session, inventory: list[str]) -> None:
    scenario = generate(seed=11, rounds=1)
    actor = Principal(name="drill", role=Role.admin)
    replay.declare(session, scenario, start=START, actor=actor)
    replayed = list(replay.replay(session, scenario, start=START, actor=actor))
    assert len(replayed) == scenario.signals
    now = replay.candidates_of(session, [r.signal_id for r in replayed])
    labels: dict[int, list[str | None]] = defaultdict(list)
    for r in replayed:
        candidate_id = now[r.signal_id]
        if candidate_id is not None:
            labels[candidate_id].append(r.truth)
        elif r.truth is not None:
            pytest.fail(f"signal {r.signal_id} of {r.truth} joined no candidate")
    majority = {c: Counter(v).most_common(1)[0][0] for c, v in labels.items()}
    assert sorted(t for t in majority.values() if t) == sorted(scenario.incidents)
    assert None not in majority.values()  # no candidate made of noise
    status = {majority[c.id]: c.status for c in session.scalars(select(Candidate))}
    assert status == {
        "injection-0": "opened",
        "vendor-outage-0": "opened",
        "refund-loop-0": "opened",
        "drift-0": "pending",
    }
