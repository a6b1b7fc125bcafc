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
from blastwall.correlation.scenarios import KINDS, generate

START = datetime(2026, 11, 20, tzinfo=UTC)


def test_scenarios_are_reproducible_and_labelled() -> None:
    one, again, other = generate(seed=3, rounds=2), generate(seed=3, rounds=2), generate(seed=4)
    assert one.events == again.events and one.events != other.events
    assert [e.at for e in one.events] == sorted(e.at for e in one.events)
    truths = {e.truth for e in one.events if e.truth is not None}
    assert truths == set(one.incidents) and len(one.incidents) == 2 * (len(KINDS) - 1)
    assert {i.kind for i in one.incidents.values()} == set(KINDS) - {"benign_warnings"}
    assert all(i.convinced_at is not None for i in one.incidents.values() if i.page)
    assert [i.name for i in one.incidents.values() if not i.page] == ["drift-0", "drift-1"]
    assert any(e.kind == "benign_warnings" and e.truth is None for e in one.events)
    assert any(e.truth is None for e in one.events)  # noise is in the stream
    assert {e.action for e in one.events} == {"signal", "resolve", "settle"}
    with pytest.raises(ValueError, match="at least one round"):
        generate(rounds=0)
    with pytest.raises(ValueError, match="unknown scenario kinds"):
        generate(kinds=("earthquake",))
    only = generate(seed=3, rounds=1, kinds=("leak",))
    assert {i.kind for i in only.incidents.values()} == {"leak"}


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
    rows = list(session.scalars(select(Candidate)))
    noise = [c.status for c in rows if majority[c.id] is None]
    assert noise and set(noise) == {"pending"}  # the benign one-off warnings wait
    status = {majority[c.id]: c.status for c in rows if majority[c.id] is not None}
    assert status == {
        "injection-0": "opened",
        "vendor_outage-0": "opened",
        "runaway-0": "opened",
        "leak-0": "opened",
        "drift-0": "pending",  # a ticket: it waits, and is escalated to its triage owner
        "slow_campaign-0": "opened",
        "injection_tool_misuse-0": "opened",
        "flapping-0": "opened",
    }
    drift = next(c for c in rows if majority[c.id] == "drift-0")
    assert drift.escalated_to == "devprod-oncall"
