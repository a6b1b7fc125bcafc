"""Correlation over time, through `correlation.flows` with explicit clocks: quiet periods,
recurrences, windows, incidents that keep absorbing; the policy file; a property test over
random signal streams."""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.api import create_app
from blastwall.auth.roles import Principal, Role
from blastwall.correlation import flows, triage
from blastwall.correlation.models import Candidate, NoiseRule, SignalGroup
from blastwall.correlation.policy import DEFAULT_PATH, current_policy, load_policy
from blastwall.correlation.schemas import Accept, Decline, Merge
from blastwall.errors import Conflict, InvalidInput
from blastwall.incidents import flows as incident_flows
from blastwall.incidents import service as incidents
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.schemas import IncidentCreate, StatusChange
from blastwall.inventory import service as inventory_service
from blastwall.inventory.loader import load_path
from blastwall.inventory.schemas import Vendor
from blastwall.settings import Settings
from blastwall.signals.models import Signal
from blastwall.signals.schemas import SignalStatus
from tests.conftest import EXAMPLES

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ADMIN = Principal(name="ops", role=Role.admin)
POLICY = load_policy()


def emit(session: Session, at: datetime, **fields: Any) -> Signal:
    values: dict[str, Any] = {
        "source": "guardrail",
        "kind": "jailbreak_attempt",
        "system_id": "code-assistant",
        "archetype": "prompt_injection",
        "severity": "warning",
        "summary": "Instruction override",
        "attributes": {},
        "status": "firing",
        "created_by": "test",
        "created_at": at,
        "updated_at": at,
    }
    values.update(fields)
    row = Signal(**values)
    session.add(row)
    flows.correlate(session, [row], now=at, policy=POLICY)
    session.commit()
    return row


def resolve(session: Session, row: Signal, at: datetime) -> None:
    row.status, row.ends_at = SignalStatus.resolved, at
    flows.resolve(session, [row], now=at)
    session.commit()


def group(session: Session, row: Signal) -> SignalGroup:
    found = session.get(SignalGroup, row.group_id)
    assert found is not None
    return found


def test_flapping_within_the_quiet_period_and_a_recurrence_after_it(
    session: Session, inventory: list[str]
) -> None:
    first = emit(session, T0, fingerprint="f1", source="alertmanager")
    resolve(session, first, T0 + timedelta(minutes=1))
    flap = emit(session, T0 + timedelta(minutes=10), fingerprint="f1", source="alertmanager")
    assert flap.group_id == first.group_id and group(session, flap).count == 2
    assert group(session, flap).resolved_at is None
    resolve(session, flap, T0 + timedelta(minutes=11))
    later = T0 + timedelta(minutes=11) + POLICY.grouping.quiet_period + timedelta(seconds=1)
    back = emit(session, later, fingerprint="f1", source="alertmanager")
    assert back.group_id != first.group_id
    assert group(session, back).previous_id == first.group_id
    assert group(session, back).count == 1


def test_declining_snoozes_a_recurring_fingerprint_once(
    session: Session, inventory: list[str]
) -> None:
    first = emit(session, T0, fingerprint="f2", source="alertmanager")
    resolve(session, first, T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=1) + POLICY.grouping.quiet_period + timedelta(seconds=1)
    back = emit(session, later, fingerprint="f2", source="alertmanager")
    assert back.group_id != first.group_id and back.candidate_id == first.candidate_id
    assert first.candidate_id is not None
    triage.decline(
        session,
        candidate_id=first.candidate_id,
        data=Decline(reason="load test"),
        actor=ADMIN,
        policy=POLICY,
    )
    rules = session.scalars(select(NoiseRule).where(NoiseRule.candidate_id == first.candidate_id))
    assert [r.match for r in rules] == [{"fingerprint": group(session, first).fingerprint}]


def test_a_waiting_candidate_closes_after_the_window(
    session: Session, inventory: list[str]
) -> None:
    first = emit(session, T0)
    near = emit(session, T0 + POLICY.grouping.window, kind="other")
    assert near.candidate_id == first.candidate_id
    far = emit(session, T0 + 2 * POLICY.grouping.window + timedelta(seconds=1), kind="third")
    assert far.candidate_id not in (None, first.candidate_id)


def test_an_open_incident_absorbs_until_it_is_resolved(
    session: Session, inventory: list[str]
) -> None:
    went_through = {"outcome": "executed"}  # evidence of impact: a refund that went through
    first = emit(
        session,
        T0,
        system_id="refund-agent",
        archetype="agentic_misalignment",
        severity="high",
        attributes=went_through,
    )
    candidate = session.get(Candidate, first.candidate_id)
    assert candidate is not None and candidate.status == "opened"
    assert candidate.incident_id is not None
    late = emit(
        session,
        T0 + timedelta(hours=6),
        system_id="refund-agent",
        archetype="agentic_misalignment",
        severity="high",
        attributes=went_through,
    )
    assert late.candidate_id == candidate.id and late.group_id == first.group_id
    incident_flows.change_status(
        session,
        incident_id=candidate.incident_id,
        change=StatusChange(status=Status.resolved),
        actor=ADMIN,
    )
    resolved_at = _resolved_at(session, candidate.incident_id)
    after = emit(
        session,
        resolved_at + POLICY.grouping.quiet_period + timedelta(minutes=1),
        system_id="refund-agent",
        archetype="agentic_misalignment",
        severity="high",
        attributes=went_through,
    )
    assert after.candidate_id != candidate.id
    assert group(session, after).previous_id == first.group_id  # a recurrence, linked
    again = session.get(Candidate, after.candidate_id)
    assert (
        again is not None
        and again.status == "opened"
        and again.incident_id != (candidate.incident_id)
    )


def _resolved_at(session: Session, incident_id: int) -> datetime:
    incident = incidents.active_incident(session, incident_id=incident_id)
    assert incident is None  # resolved: no longer carries signals
    row = incidents.get_incident(session, incident_id=incident_id, principal=ADMIN)
    assert row.resolved_at is not None
    return max(row.resolved_at, T0 + timedelta(hours=6))


def test_low_confidence_findings_start_no_candidate(session: Session, inventory: list[str]) -> None:
    weak = emit(
        session,
        T0,
        source="detector",
        detector="prompt_injection",
        confidence=0.2,
        fingerprint="d1",
        severity="high",
    )
    assert weak.group_id is not None and weak.candidate_id is None
    strong = emit(
        session,
        T0,
        source="detector",
        detector="prompt_injection",
        confidence=0.9,
        fingerprint="d2",
        severity="high",
    )
    assert strong.candidate_id is not None


# -- the policy file ---------------------------------------------------------------------


def test_an_override_replaces_whole_sections(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "grouping:\n  window: 2h\n  quiet_period: 5m\n"
        "  min_candidate_severity: high\n  min_candidate_confidence: 0.7\n"
        "  decline_snooze: 1d\n  component_attributes: {}\n"
    )
    policy = load_policy(path)
    assert policy.grouping.window == timedelta(hours=2)
    assert policy.grouping.decline_snooze == timedelta(days=1)
    assert policy.severity.open_incident_at.value == "SEV2"  # untouched section: the default


def test_an_invalid_policy_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "fingerprints:\n  default: [source, colour]\n"
        "severity:\n  open_incident_at: SEV9\n  levels: {SEV1: 1, SEV2: 5, SEV3: 9}\n"
        "  factors: {}\n"
    )
    with pytest.raises(InvalidInput) as raised:
        load_policy(path)
    fields = {p.location for p in raised.value.problems}
    assert "severity.open_incident_at" in fields and "severity.factors.signal_severity" in fields
    path.write_text("fingerprints:\n  default: [source, colour]\n")
    with pytest.raises(InvalidInput) as raised:
        load_policy(path)
    assert "unknown field 'colour'" in str(raised.value)
    path.write_text("grouping: [unclosed\n")
    with pytest.raises(InvalidInput) as raised:
        load_policy(path)
    assert raised.value.problems[0].line is not None
    with pytest.raises(InvalidInput, match="Cannot read"):
        load_policy(tmp_path / "missing.yaml")


def test_a_broken_edit_keeps_the_last_valid_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_severity_section("SEV3"))
    assert current_policy(path).severity.open_incident_at.value == "SEV3"
    path.write_text("severity: {open_incident_at: SEV9}\n")
    os.utime(path, (1, 1))  # a different modification time, whatever the clock's grain
    assert current_policy(path).severity.open_incident_at.value == "SEV3"
    path.write_text(_severity_section("SEV1"))
    os.utime(path, (2, 2))
    assert current_policy(path).severity.open_incident_at.value == "SEV1"


def _severity_section(threshold: str) -> str:
    """The default policy file, with another threshold."""
    text = DEFAULT_PATH.read_text()
    assert "open_incident_at: SEV2" in text
    return text.replace("open_incident_at: SEV2", f"open_incident_at: {threshold}")


def test_the_server_refuses_to_start_on_an_invalid_policy(tmp_path: Path, db: Any) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("grouping:\n  window: soon\n")
    with pytest.raises(InvalidInput, match="is invalid"):
        create_app(db, Settings(correlation_policy=path))


# -- property: random streams ------------------------------------------------------------

step = st.one_of(
    st.tuples(
        st.just("emit"),
        st.sampled_from(["a", "b"]),  # system
        st.sampled_from(["prompt_injection", "toxicity_abuse", None]),
        st.sampled_from(["k1", "k2", "k3"]),
        st.sampled_from(["info", "warning", "high"]),
    ),
    st.tuples(st.just("resolve"), st.integers(0, 30)),
    st.tuples(st.just("wait"), st.integers(1, 120)),  # minutes
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_random_streams_keep_counts_and_windows(
    session: Session, inventory: list[str], steps: list[tuple[Any, ...]]
) -> None:
    prefix = f"shadow-{uuid.uuid4().hex[:8]}"  # every example on systems of its own
    now = T0
    emitted: list[Signal] = []
    for item in steps:
        if item[0] == "wait":
            now += timedelta(minutes=item[1])
        elif item[0] == "resolve" and emitted:
            resolve(session, emitted[item[1] % len(emitted)], now)
        elif item[0] == "emit":
            _, system, archetype, kind, severity = item
            emitted.append(
                emit(
                    session,
                    now,
                    system_id=None,
                    system_ref=f"{prefix}-{system}",
                    archetype=archetype,
                    kind=kind,
                    severity=severity,
                )
            )
    assert all(s.group_id is not None for s in emitted)
    groups = {s.group_id for s in emitted}
    counted = session.scalars(select(SignalGroup).where(SignalGroup.id.in_(groups)))
    assert sum(g.count for g in counted) == len(emitted)
    per_candidate: dict[int, int] = defaultdict(int)
    for s in emitted:
        if s.candidate_id is not None:
            per_candidate[s.candidate_id] += 1
        else:  # too weak to start one, and none was live
            assert s.severity == "info"
    made = list(session.scalars(select(Candidate).where(Candidate.id.in_(per_candidate))))
    assert {c.id: c.signal_count for c in made} == dict(per_candidate)
    by_key: dict[str, list[Candidate]] = defaultdict(list)
    for c in sorted(made, key=lambda c: c.id):
        by_key[c.key].append(c)
    for chain in by_key.values():
        for before, after in pairwise(chain):
            # a key gets a new candidate only once the one before has gone quiet
            assert after.first_signal_at - before.last_signal_at > POLICY.grouping.window


def test_a_changed_inventory_is_read_again(session: Session, inventory: list[str]) -> None:
    def names(vendor: str, at: datetime, kind: str) -> Signal:
        return emit(
            session,
            at,
            system_id="code-assistant",
            archetype="vendor_failure",
            severity="warning",
            kind=kind,
            attributes={"vendor": vendor},
        )

    before = names("acme", T0, "upstream_errors")
    candidate = session.get(Candidate, before.candidate_id)
    assert candidate is not None and candidate.basis == "system"  # acme is not declared
    loaded = {i.spec.id: i.spec for i in load_path(EXAMPLES)}
    spec = loaded["code-assistant"]
    vendors = [*spec.components.vendors, Vendor(name="acme")]
    changed = spec.model_copy(
        update={"components": spec.components.model_copy(update={"vendors": vendors})}
    )
    inventory_service.apply_specs(session, specs=[changed], actor="test")
    after = names("acme", T0 + timedelta(minutes=1), "upstream_timeouts")
    again = session.get(Candidate, after.candidate_id)
    assert again is not None and again.component == "vendor:acme"


# -- property: triage decisions ----------------------------------------------------------

decision = st.tuples(
    st.sampled_from(["signal", "accept", "decline", "merge"]),
    st.integers(0, 3),  # which candidate
)
ALLOWED = {
    "pending": {"pending", "opened", "accepted", "declined", "merged"},
    "declined": {"declined", "accepted", "merged"},
    "accepted": {"accepted"},
    "merged": {"merged"},
    "opened": {"opened"},
}


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(decision, min_size=1, max_size=15))
def test_triage_decisions_follow_the_status_machine(
    session: Session, inventory: list[str], steps: list[tuple[str, int]]
) -> None:
    prefix = f"shadow-{uuid.uuid4().hex[:8]}"
    target = incidents.create_incident(
        session,
        data=IncidentCreate(title="target", archetype="toxicity_abuse", severity="SEV3"),
        actor=ADMIN,
    )
    made: list[int] = []
    for n, (action, pick) in enumerate(steps):
        if action == "signal" or not made:
            row = emit(
                session,
                T0 + timedelta(seconds=n),
                system_id=None,
                system_ref=f"{prefix}-{pick}",
                severity="warning",
            )
            if row.candidate_id not in made and row.candidate_id is not None:
                made.append(row.candidate_id)
            continue
        candidate = session.get(Candidate, made[pick % len(made)])
        assert candidate is not None
        before = candidate.status
        allowed = ("pending",) if action == "decline" else ("pending", "declined")
        try:
            if action == "accept":
                triage.accept(session, candidate_id=candidate.id, data=Accept(), actor=ADMIN)
            elif action == "decline":
                triage.decline(
                    session,
                    candidate_id=candidate.id,
                    data=Decline(reason="noise"),
                    actor=ADMIN,
                    policy=POLICY,
                )
            else:
                triage.merge(
                    session,
                    candidate_id=candidate.id,
                    data=Merge(incident_id=target.id),
                    actor=ADMIN,
                )
        except Conflict:
            assert before not in allowed  # refused exactly when the status forbids it
            continue
        assert before in allowed
        session.refresh(candidate)
        assert candidate.status in ALLOWED[before]
        assert (candidate.incident_id is not None) == (
            candidate.status in ("opened", "accepted", "merged")
        )
        assert candidate.decided_by == ADMIN.name
