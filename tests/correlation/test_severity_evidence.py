"""Severity from evidence (issue 26): the policy weighs what the signals show — breadth,
volume against the system's baseline, harm reported by people, success against attempt,
detector confidence, persistence, what leaked — and the inventory raises an event with
evidence of impact, but alone does not open an incident. The four cases of the issue,
through the flows with fixed clocks; the factors, on their own."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.correlation import evidence, flows
from blastwall.correlation.models import Candidate
from blastwall.correlation.policy import load_policy
from blastwall.correlation.scenarios import MINUTE, Event, campaign_convinced
from blastwall.correlation.severity import Impact, assess, leak_points
from blastwall.incidents.models import Incident, TimelineEntry
from blastwall.signals.models import Signal
from tests.conftest import Clients

T0 = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
POLICY = load_policy()
SEVERITY = POLICY.severity
H = dict[str, str]


def emit(session: Session, at: datetime, **fields: Any) -> Signal:
    values: dict[str, Any] = {
        "source": "detector",
        "kind": "prompt_injection",
        "detector": "prompt_injection",
        "system_id": "support-chatbot",
        "archetype": "prompt_injection",
        "severity": "warning",
        "summary": "Instruction override in a user message",
        "attributes": {},
        "status": "firing",
        "fingerprint": "prompt_injection:support-chatbot:prompt_injection",
        "starts_at": at,
        "created_by": "test",
        "created_at": at,
        "updated_at": at,
    }
    values.update(fields)
    row = Signal(**values)
    session.add(row)
    session.flush()
    if row.source == "report":
        row.reference = f"RPT-{row.id:06d}"
    flows.correlate(session, [row], now=at, policy=POLICY)
    session.commit()
    return row


def report(session: Session, at: datetime, conversation: str, **fields: Any) -> Signal:
    return emit(
        session,
        at,
        **{
            "source": "report",
            "kind": "user_report",
            "detector": None,
            "archetype": None,
            "fingerprint": None,
            "summary": "The assistant answered me with insults",
            "conversation_id": conversation,
            **fields,
        },
    )


def candidate_of(session: Session, row: Signal) -> Candidate:
    assert row.candidate_id is not None
    found = session.get(Candidate, row.candidate_id)
    assert found is not None
    session.refresh(found)
    return found


def factor(candidate: Candidate, name: str) -> dict[str, Any]:
    return next(f for f in candidate.explanation if f["factor"] == name)


# --- the four cases of the issue ---------------------------------------------------------------


def test_the_slow_campaign_with_reports_pages_once_it_would_convince_a_human(
    session: Session, inventory: list[str]
) -> None:
    """Forty injection hits over two and a half hours from seven conversations, five user
    reports of offensive answers in those conversations: it used to stay a SEV3 candidate
    at 8 points. It pages, no later than the stated rule says a person would be convinced."""
    conversations = [f"slow-c{i}" for i in range(7)]
    plan: list[tuple[float, str, str]] = []  # minutes, what, conversation
    for k in range(40):
        shown = conversations[: min(7, 1 + k // 3)]  # the conversations join one by one
        plan.append((k * 3.75, "hit", shown[k % len(shown)]))
    for n, conversation in enumerate(conversations[:5]):
        plan.append((20 + n * 25, "report", conversation))
    plan.sort()
    events = [
        Event(
            minutes * MINUTE,
            "signal",
            "campaign",
            {"source": "report"}
            if what == "report"
            else {"archetype": "prompt_injection"} | {"conversation_id": conversation},
        )
        for minutes, what, conversation in plan
    ]
    convinced = campaign_convinced(events)
    assert convinced is not None
    rows: list[tuple[float, Signal]] = []
    for minutes, what, conversation in plan:
        at = T0 + timedelta(minutes=minutes)
        if what == "report":
            rows.append((minutes, report(session, at, conversation)))
        else:
            confidence = 0.6 + (len(rows) % 5) * 0.05  # 0.60-0.80: warnings
            rows.append(
                (minutes, emit(session, at, conversation_id=conversation, confidence=confidence))
            )
    candidate = candidate_of(session, rows[0][1])
    assert {r.candidate_id for _, r in rows} == {candidate.id}  # one campaign, one candidate
    assert candidate.status == "opened" and candidate.incident_id is not None
    incident = session.get(Incident, candidate.incident_id)
    assert incident is not None
    opened = session.scalar(
        select(TimelineEntry).where(
            TimelineEntry.incident_id == incident.id, TimelineEntry.kind == "opened_by_policy"
        )
    )
    assert opened is not None
    tipping = next(m for m, r in rows if r.id == opened.data["signal"])
    assert tipping * MINUTE <= convinced  # paged no later than a person would be convinced
    assert opened.data["before"]["severity"] in ("SEV3", "SEV4")
    assert f"signal {opened.data['signal']}" in opened.text and "took it from" in opened.text
    assert opened.data["changed"]  # which factors moved it over the threshold
    harm = factor(candidate, "harm")
    assert harm["points"] >= SEVERITY.factors.harm.corroborated  # type: ignore[union-attr]
    assert "in a conversation where a detector found something too" in harm["why"]
    outcome = factor(candidate, "outcome")
    assert outcome["points"] > 0 and "followed by a report from a person" in outcome["why"]
    assert candidate.evidence["reports"] == 5 and len(candidate.evidence["corroborated"]) == 5
    assert factor(candidate, "persistence")["points"] == 2  # still going after two hours
    assert factor(candidate, "volume")["points"] > 0


def test_a_secret_leaking_across_conversations_pages(
    session: Session, inventory: list[str]
) -> None:
    """Four findings of an API key in the code assistant's answers, in three conversations:
    it used to wait at 6 points."""
    rows = [
        emit(
            session,
            T0 + timedelta(minutes=minutes),
            detector="sensitive_data",
            kind="sensitive_data_in_output",
            system_id="code-assistant",
            archetype="data_exfiltration",
            severity="high",
            confidence=0.85,
            summary="Sensitive data in the output: API key or token (1)",
            fingerprint="sensitive_data:code-assistant:api_key",
            conversation_id=conversation,
            attributes={"types": {"api_key": 1}, "channels": ["output"]},
        )
        for minutes, conversation in ((0, "a"), (12, "b"), (30, "a"), (41, "c"))
    ]
    candidate = candidate_of(session, rows[-1])
    assert {r.candidate_id for r in rows} == {candidate.id}
    assert candidate.status == "opened" and at_least(candidate.severity, "SEV2")
    assert factor(candidate, "leaked") == {"factor": "leaked", "points": 3, "why": "api_key (1)"}
    assert "data left: api_key (1)" in factor(candidate, "outcome")["why"]
    assert candidate.evidence["leaks"] == {"api_key": 1}


def test_the_refund_agent_quoting_a_customers_own_address_does_not_page(
    session: Session, inventory: list[str]
) -> None:
    """One e-mail address in one answer on the high-risk refund agent (personal data,
    irreversible tools): it used to open a SEV2 incident at 10 points."""
    row = emit(
        session,
        T0,
        detector="sensitive_data",
        kind="sensitive_data_in_output",
        system_id="refund-agent",
        archetype="data_exfiltration",
        severity="high",
        confidence=0.85,
        summary="Sensitive data in the output: e-mail address (1)",
        fingerprint="sensitive_data:refund-agent:email",
        conversation_id="own-address",
        attributes={"types": {"email": 1}, "channels": ["output"]},
    )
    candidate = candidate_of(session, row)
    assert candidate.status == "pending" and candidate.incident_id is None
    assert not at_least(candidate.severity, SEVERITY.open_incident_at.value)
    assert "likely the user's own, echoed back" in factor(candidate, "leaked")["why"]
    assert factor(candidate, "leaked")["points"] == 0
    impact = factor(candidate, "impact")
    assert impact["points"] < 0 and "no evidence of impact yet" in impact["why"]
    assert session.scalar(select(Incident.id)) is None


def test_a_feature_store_latency_blip_on_the_fraud_model_does_not_page(
    session: Session, inventory: list[str]
) -> None:
    """One latency warning on fraud-scoring (restricted data, EU high-risk): it used to
    open a SEV2 incident at 11 points."""
    row = emit(
        session,
        T0,
        source="alertmanager",
        kind="FeatureStoreLatencyHigh",
        detector=None,
        system_id="fraud-scoring",
        archetype="performance_degradation",
        severity="warning",
        summary="Feature-store p99 latency above 250 ms",
        fingerprint="am-feature-store-latency",
        attributes={
            "labels": {"alertname": "FeatureStoreLatencyHigh", "vendor": "feature-store-co"}
        },
    )
    candidate = candidate_of(session, row)
    assert candidate.status == "pending" and candidate.incident_id is None
    assert candidate.severity == "SEV4"
    inventory_points = sum(
        f["points"]
        for f in candidate.explanation
        if f["factor"] in ("data_sensitivity", "decision_significance", "regulatory", "ongoing")
    )
    assert inventory_points == 10  # what the inventory says, in full, is explained ...
    impact = factor(candidate, "impact")
    assert impact["points"] == 2 - 10  # ... and counts 2 points without evidence of impact


# --- re-scoring: threshold and escalation ------------------------------------------------------


def test_a_candidate_growing_below_the_threshold_is_escalated_once(
    session: Session, inventory: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A drift finding every 20 minutes: it never reaches the threshold, but after the
    policy's 90 minutes of growth it is escalated to the code assistant's on-call."""
    assert SEVERITY.escalation is not None and SEVERITY.escalation.after == timedelta(minutes=90)
    drift = {
        "detector": "drift",
        "kind": "output_drift",
        "system_id": "code-assistant",
        "archetype": "model_manipulation",
        "confidence": 0.7,
        "fingerprint": "drift:code-assistant:output_drift",
        "summary": "Answers drifted from the baseline",
    }
    with caplog.at_level(logging.WARNING, logger="blastwall.correlation"):
        rows = [emit(session, T0 + timedelta(minutes=20 * k), **drift) for k in range(5)]
        candidate = candidate_of(session, rows[-1])
        assert candidate.escalated_at is None  # 80 minutes: not yet
        rows.append(emit(session, T0 + timedelta(minutes=100), **drift))
        candidate = candidate_of(session, rows[-1])
        assert candidate.status == "pending" and candidate.incident_id is None
        assert candidate.escalated_at == T0 + timedelta(minutes=100)
        assert candidate.escalated_to == "devprod-oncall"  # the inventory's on-call
        (escalated,) = [r for r in candidate.reasons if r["kind"] == "escalated"]
        assert "still growing after 100 min below the threshold" in escalated["why"]
        assert "on-call of code-assistant" in escalated["why"]
        emit(session, T0 + timedelta(minutes=120), **drift)
    candidate = candidate_of(session, rows[-1])
    assert candidate.escalated_at == T0 + timedelta(minutes=100)  # once
    assert sum(r["kind"] == "escalated" for r in candidate.reasons) == 1
    logged = [r for r in caplog.records if "escalated to devprod-oncall" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING


def test_volume_counts_against_the_systems_usual_rate(
    session: Session, inventory: list[str]
) -> None:
    """Ten injection hits in ten minutes are ten times the floor on a quiet system, and
    nothing special on one that sends twenty such signals an hour."""
    for k in range(7 * 24 * 20):  # the past week of support-chatbot: 20 an hour
        at = T0 - timedelta(days=7) + timedelta(minutes=3 * k)
        session.add(
            Signal(
                source="detector",
                kind="prompt_injection",
                system_id="support-chatbot",
                archetype="prompt_injection",
                severity="warning",
                summary="weak pattern",
                attributes={},
                status="firing",
                created_by="test",
                created_at=at,
                updated_at=at,
            )
        )
    session.commit()
    busy = [
        emit(session, T0 + timedelta(minutes=k), conversation_id="busy", confidence=0.8)
        for k in range(10)
    ]
    quiet = [
        emit(
            session,
            T0 + timedelta(minutes=k),
            system_id="code-assistant",
            fingerprint="prompt_injection:code-assistant:prompt_injection",
            conversation_id="quiet",
            confidence=0.8,
        )
        for k in range(10)
    ]
    noisy, calm = candidate_of(session, busy[-1]), candidate_of(session, quiet[-1])
    assert noisy.evidence["baseline_per_hour"] == pytest.approx(20, rel=0.01)
    assert factor(noisy, "volume")["points"] == 0
    assert "0.5x the baseline of 20/h" in factor(noisy, "volume")["why"]
    assert factor(calm, "volume")["points"] == 2
    assert "10.0x the baseline of 1/h" in factor(calm, "volume")["why"]


def test_the_api_shows_the_evidence_and_the_cli_prints_it(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client: TestClient = clients.client
    finding = {
        "source": "guardrail",
        "system": "support-chatbot",
        "kind": "jailbreak_attempt",
        "archetype": "prompt_injection",
        "severity": "high",
        "summary": "Instruction override in a customer message",
        "conversation_id": "api-c1",
    }
    first = client.post("/api/v1/signals", json=finding, headers=admin)
    assert first.status_code == 201, first.text
    reported = client.post(
        "/api/v1/reports",
        json={"what": "It insulted me after I pasted a strange text", "conversation_id": "api-c1"},
        headers=admin,
    )
    assert reported.status_code == 201, reported.text
    answer = client.get(f"/api/v1/candidates/{first.json()['candidate_id']}", headers=admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["evidence"]["reports"] == 1 and body["evidence"]["corroborated"] == 1
    assert body["evidence"]["succeeded"][0].startswith(
        "the injection in conversation api-c1 was followed by a report from a person"
    )
    assert body["escalated_at"] is None and body["escalated_to"] is None
    assert "harm +4" in body["severity_explanation"]


# --- the factors, on their own -----------------------------------------------------------------


def refund_agent(**evidence: Any) -> Impact:
    """The refund agent's inventory (personal data, irreversible tools, high risk)."""
    return Impact(
        top_signal_severity=evidence.pop("top_signal_severity", "warning"),
        affected=evidence.pop("affected", 1),
        systems=1,
        sensitivities=["personal"],
        permissions=["refunds:create", "email:send"],
        risk_tiers=["high"],
        ongoing=True,
        controls=["suspend"],
        **evidence,
    )


def test_the_inventory_raises_evidence_of_impact_but_does_not_open_alone() -> None:
    alone = assess(SEVERITY, refund_agent(confidence=0.55))
    assert alone.evidence == 0 and alone.severity == "SEV4"
    impact = next(f for f in alone.factors if f["factor"] == "impact")
    assert impact["points"] == 2 - 9
    assert impact["why"] == (
        "no evidence of impact yet (0 points, fewer than 5): the inventory counts 2 of its 9 points"
    )
    went_through = assess(
        SEVERITY, refund_agent(top_signal_severity="high", succeeded=["refund went through"])
    )
    assert went_through.evidence == 5 and went_through.points == 5 + 9
    assert went_through.severity == "SEV2"


def test_a_report_that_corroborates_a_detector_weighs_more_than_either_alone() -> None:
    finding = assess(SEVERITY, refund_agent(confidence=0.8, attempts=1))
    reported = assess(SEVERITY, refund_agent(reports=1))
    both = assess(SEVERITY, refund_agent(confidence=0.8, attempts=1, reports=1, corroborated=1))
    assert both.evidence > max(finding.evidence, reported.evidence)
    assert both.points > max(finding.points, reported.points)
    several = assess(SEVERITY, refund_agent(reports=3, corroborated=2))
    harm = next(f for f in several.factors if f["factor"] == "harm")
    assert harm["points"] == 4 + 1 and harm["why"].startswith("3 report(s) from people, 2 in")


def test_attempts_that_were_all_blocked_weigh_less() -> None:
    blocked = assess(SEVERITY, refund_agent(attempts=4, blocked=4))
    outcome = next(f for f in blocked.factors if f["factor"] == "outcome")
    assert outcome == {"factor": "outcome", "points": -1, "why": "attempts only: all 4 blocked"}
    assert "outcome -1 (attempts only: all 4 blocked)" in blocked.explain()


def test_what_leaked_and_how_sensitive_it_is() -> None:
    leaked = SEVERITY.factors.leaked
    assert leaked is not None
    assert leak_points(leaked, "email", 1) == (0, "email (1): likely the user's own, echoed back")
    assert leak_points(leaked, "email", 3) == (1, "email (3)")
    assert leak_points(leaked, "api_key", 1) == (3, "api_key (1)")
    assert leak_points(leaked, "canary_token_leak", 1) == (3, "canary_token_leak (1)")
    assert leak_points(leaked, "unknown_type", 2) == (0, "unknown_type (2)")


def test_volume_persistence_and_confidence_tiers() -> None:
    campaign = assess(
        SEVERITY, refund_agent(signals=40, minutes=150, confidence=0.93, baseline_per_hour=0.2)
    )
    points = {f["factor"]: f["points"] for f in campaign.factors}
    assert (points["volume"], points["persistence"], points["confidence"]) == (2, 2, 1)
    stopped = assess(SEVERITY, refund_agent(signals=4, minutes=45, confidence=0.65))
    points = {f["factor"]: f["points"] for f in stopped.factors}
    assert (points["volume"], points["persistence"], points["confidence"]) == (0, 1, -1)
    quiet = refund_agent(minutes=45)
    quiet.ongoing = False
    assert {f["factor"]: f["points"] for f in assess(SEVERITY, quiet).factors}["persistence"] == 0


def test_a_policy_file_from_before_still_loads_and_scores_as_before(tmp_path: Path) -> None:
    """Older override files have none of the evidence factors: they are not weighed, the
    inventory is not capped and nothing is escalated."""
    old = tmp_path / "policy.yaml"
    old.write_text(
        """
severity:
  open_incident_at: SEV2
  levels: {SEV1: 13, SEV2: 9, SEV3: 5}
  factors:
    signal_severity: {critical: 4, high: 2, warning: 1, info: 0}
    affected: [{at_least: 2, points: 1}]
    data_sensitivity: {restricted: 3, personal: 2}
    reversibility: {points: 2, irreversible_permissions: ["refunds:*"]}
    decision_significance: {high: 3}
    scale: [{systems_at_least: 2, points: 2}]
    regulatory: {eu_ai_act_high_risk: 2, personal_data: 1}
    ongoing:
      within: 15m
      ongoing_unstoppable: 3
      ongoing_stoppable: 1
      stopped: 0
      stop_controls: [suspend]
"""
    )
    policy = load_policy(old).severity
    assert policy.impact is None and policy.escalation is None
    assert policy.factors.volume is None and policy.factors.leaked is None
    assessed = assess(policy, refund_agent(top_signal_severity="high"))
    assert [f["factor"] for f in assessed.factors][-1] == "ongoing"
    assert (assessed.severity, assessed.points) == ("SEV2", 2 + 2 + 2 + 3 + 1 + 1)


# --- what a signal shows -----------------------------------------------------------------------


def signal(number: int, **fields: Any) -> Signal:
    values: dict[str, Any] = {
        "id": number,
        "source": "detector",
        "kind": "prompt_injection",
        "archetype": "prompt_injection",
        "severity": "warning",
        "summary": "s",
        "attributes": {},
        "confidence": 0.8,
    }
    values.update(fields)
    return Signal(**values)


def test_a_report_corroborates_a_finding_in_either_order() -> None:
    first = evidence.observe({}, signal(1, conversation_id="c1"), SEVERITY)
    report_after = evidence.observe(
        first, signal(2, source="report", archetype=None, conversation_id="c1"), SEVERITY
    )
    assert report_after["corroborated"] == ["c1"] and report_after["reports"] == 1
    early = evidence.observe(
        {}, signal(3, source="report", archetype=None, conversation_id="c2"), SEVERITY
    )
    finding_after = evidence.observe(
        early,
        signal(4, kind="toxicity", archetype="toxicity_abuse", conversation_id="c2"),
        SEVERITY,
    )
    assert finding_after["corroborated"] == ["c2"]
    assert "succeeded" not in finding_after  # no injection came first: no success
    elsewhere = evidence.observe(
        first, signal(5, source="report", archetype=None, conversation_id="c9"), SEVERITY
    )
    assert "corroborated" not in elsewhere


def test_success_against_attempt() -> None:
    state = evidence.observe({}, signal(1, trace_id="t" * 32, conversation_id="c1"), SEVERITY)
    misuse = signal(
        2,
        kind="tool_constraint_violation",
        archetype="agentic_misalignment",
        trace_id="t" * 32,
        conversation_id=None,
    )
    state = evidence.observe(state, misuse, SEVERITY)
    assert state["succeeded"] == [
        f"the injection in trace {'t' * 32} was followed by tool_constraint_violation (signal 2)",
        "tool_constraint_violation went through (signal 2)",
    ]
    blocked = evidence.observe(
        {}, signal(3, kind="jailbreak_blocked", conversation_id="c7"), SEVERITY
    )
    after = evidence.observe(
        blocked, signal(4, source="report", archetype=None, conversation_id="c7"), SEVERITY
    )
    assert after["blocked"] == 1 and "succeeded" not in after  # a blocked injection is no cause
    denied = signal(5, kind="tool_call", archetype="agentic_misalignment")
    denied.attributes = {"outcome": "denied"}
    assert evidence.outcome_of(SEVERITY.factors.outcome, denied) == "blocked"
    denied.attributes = {"decision": "allow"}
    assert evidence.outcome_of(SEVERITY.factors.outcome, denied) == "executed"


def test_only_sensitive_data_that_left_is_a_success() -> None:
    own = signal(
        1,
        kind="sensitive_data_in_output",
        archetype="data_exfiltration",
        attributes={"types": {"email": 1}},
    )
    assert "succeeded" not in evidence.observe({}, own, SEVERITY)
    key = signal(
        2,
        kind="sensitive_data_in_output",
        archetype="data_exfiltration",
        attributes={"types": {"api_key": 1, "email": 2}},
    )
    state = evidence.observe({}, key, SEVERITY)
    assert state["leaks"] == {"api_key": 1, "email": 2}
    assert state["succeeded"] == ["data left: api_key (1) (signal 2)"]


def at_least(severity: str, threshold: str) -> bool:
    order = ("SEV1", "SEV2", "SEV3", "SEV4")
    return order.index(severity) <= order.index(threshold)
