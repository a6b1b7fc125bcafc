"""The status page's storage and steps: components from YAML, the public updates it keeps
(and those it must never take), component status, maintenance windows, and the documents in
Statuspage's shape."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Principal, Role
from blastwall.comms.flows import statuspage as flows
from blastwall.comms.models.statuspage import (
    StatusIncident,
    StatusIncidentUpdate,
    StatusSubscriber,
    SubscriberKind,
)
from blastwall.comms.service import statuspage as pages
from blastwall.comms.service import statuspage_subscribers as subscribers
from blastwall.comms.service.statuspage import PageInfo
from blastwall.comms.service.statuspage_feed import Feed
from blastwall.errors import InvalidInput
from blastwall.incidents import flows as incident_flows
from blastwall.incidents.schemas import (
    Archetype,
    IncidentCreate,
    IncidentUpdate,
    Severity,
    Visibility,
)
from blastwall.pipeline import IncidentChanged
from tests.support.statuspage import AT, EXAMPLE, Outbox, apply_example, published

PAGE = PageInfo(name="Acme status", url="https://status.example.com")


def feed(session: Session, *, minutes: int = 1) -> Feed:
    return Feed.read(session, page=PAGE, now=AT + timedelta(minutes=minutes))


def statuses(session: Session, *, minutes: int = 1) -> dict[str, str]:
    docs = feed(session, minutes=minutes).documents()["components.json"]["components"]
    return {c["id"]: c["status"] for c in docs}


def publish(session: Session, **changes: object) -> list[object]:
    return pipeline.publish(session, published(**changes))


def test_components_are_applied_changed_and_removed(session: Session, tmp_path: Path) -> None:
    spec = pages.load_spec(EXAMPLE)
    assert pages.apply_components(session, spec=spec, now=AT) == (4, 0, 0)
    assert pages.apply_components(session, spec=spec, now=AT) == (0, 0, 0)
    smaller = tmp_path / "page.yaml"
    smaller.write_text(
        "components:\n"
        "  - {id: support-assistant, name: Assistant, systems: [support-chatbot]}\n"
        "  - {id: refunds, name: Refunds, systems: [refund-agent]}\n"
    )
    assert pages.apply_components(session, spec=pages.load_spec(smaller), now=AT) == (0, 2, 2)
    assert [c.name for c in pages.components(session)] == ["Assistant", "Refunds"]


def test_a_bad_declaration_names_each_problem(tmp_path: Path) -> None:
    bad = tmp_path / "page.yaml"
    bad.write_text(
        "components:\n  - {id: 'Not An Id', name: x}\n  - {id: a, name: b, colour: red}\n"
        "  - {id: a, name: c}\n"
    )
    with pytest.raises(InvalidInput) as caught:
        pages.load_spec(bad)
    text = str(caught.value)
    assert "components[0].id" in text and "components[1].colour" in text
    bad.write_text("components: [")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        pages.load_spec(bad)


def test_a_public_update_opens_a_status_incident_on_its_components(session: Session) -> None:
    apply_example(session)
    publish(session)
    assert statuses(session) == {
        "support-assistant": "major_outage",
        "refunds": "operational",
        "fraud-checks": "operational",
        "developer-tools": "operational",
        "group-customer-facing-ai": "major_outage",
    }
    docs = feed(session).documents()
    assert docs["status.json"]["status"] == {
        "indicator": "critical",
        "description": "Major System Outage",
    }
    [incident] = docs["incidents/unresolved.json"]["incidents"]
    assert incident["name"] == "Support assistant answers slowly"
    assert (incident["status"], incident["impact"]) == ("investigating", "major")
    assert [c["id"] for c in incident["components"]] == ["support-assistant"]
    [update] = incident["incident_updates"]
    assert update["body"].startswith("What happened: answers take minutes.")
    assert update["affected_components"][0]["new_status"] == "major_outage"
    assert incident["shortlink"] == f"https://status.example.com#incident-{incident['id']}"


def test_the_worst_open_incident_wins_and_resolving_brings_operational(session: Session) -> None:
    apply_example(session)
    publish(session, component_status="degraded_performance", impact="minor")
    publish(
        session,
        update_id=2,
        incident_id=55,
        system_ids=("support-chatbot", "refund-agent"),
        component_status="partial_outage",
    )
    assert statuses(session)["support-assistant"] == "partial_outage"
    assert statuses(session)["refunds"] == "partial_outage"
    publish(session, update_id=3, incident_id=55, phase="resolved", component_status="operational")
    assert statuses(session)["support-assistant"] == "degraded_performance"
    assert statuses(session)["refunds"] == "operational"
    publish(session, update_id=4, phase="monitoring", published_at=AT + timedelta(minutes=10))
    publish(session, update_id=5, phase="resolved", published_at=AT + timedelta(minutes=30))
    assert set(statuses(session, minutes=40).values()) == {"operational"}
    docs = feed(session, minutes=40).documents()
    assert docs["incidents/unresolved.json"]["incidents"] == []
    assert docs["status.json"]["status"]["indicator"] == "none"
    history = docs["incidents.json"]["incidents"]
    assert len(history) == 2
    first = next(i for i in history if len(i["incident_updates"]) == 3)
    assert first["resolved_at"] == "2026-12-01T09:30:00.000Z"
    assert first["monitoring_at"] == "2026-12-01T09:10:00.000Z"
    assert [u["status"] for u in first["incident_updates"]] == [
        "resolved",
        "monitoring",
        "investigating",
    ]


def test_the_same_update_is_recorded_once(session: Session) -> None:
    apply_example(session)
    publish(session)
    publish(session)
    assert session.scalar(select(func.count()).select_from(StatusIncidentUpdate)) == 1


@pytest.mark.parametrize(
    "changes", [{"restricted": True}, {"public": False, "audience": "executives"}]
)
def test_restricted_and_internal_updates_never_reach_the_page(
    session: Session, changes: dict[str, object]
) -> None:
    apply_example(session)
    publish(session, **changes)
    assert session.scalar(select(func.count()).select_from(StatusIncident)) == 0
    assert set(statuses(session).values()) == {"operational"}


def test_an_incident_that_becomes_restricted_leaves_the_page(session: Session) -> None:
    apply_example(session)
    publish(session)
    change = IncidentChanged(
        incident_id=987654321,
        change="status_changed",
        at=AT,
        actor="casey",
        severity="SEV2",
        restricted=True,
    )
    pipeline.publish(session, change)
    assert session.scalar(select(func.count()).select_from(StatusIncident)) == 0
    assert session.scalar(select(func.count()).select_from(StatusIncidentUpdate)) == 0
    publish(session, update_id=2, restricted=True)  # and does not come back
    assert feed(session).documents()["incidents.json"]["incidents"] == []


def test_the_documents_show_nothing_of_blastwall_itself(session: Session) -> None:
    """No incident number, no author, no system id but those a component makes public."""
    apply_example(session)
    publish(session)
    text = orjson.dumps(feed(session).documents()).decode()
    text += feed(session).html(api_base="api/v2/", subscribe="/status/subscribe")
    for secret in ("987654321", "casey", "support-chatbot", "refund-agent", "fraud-scoring"):
        assert secret not in text
    developer_tools = next(c for c in feed(session).component_docs if c["id"] == "developer-tools")
    assert developer_tools["systems"] == ["code-assistant"]


def test_unknown_values_in_an_update_are_shown_as_the_nearest_known(session: Session) -> None:
    apply_example(session)
    publish(session, phase="pondering", impact="huge", component_status="on_fire")
    [incident] = feed(session).documents()["incidents.json"]["incidents"]
    assert (incident["status"], incident["impact"]) == ("investigating", "minor")
    assert statuses(session)["support-assistant"] == "degraded_performance"


def test_a_maintenance_is_scheduled_then_in_force_then_completed(session: Session) -> None:
    apply_example(session)
    start, end = AT + timedelta(hours=1), AT + timedelta(hours=2)
    row = flows.add_maintenance(
        session,
        component_ids=["refunds"],
        start=start,
        end=end,
        title="Refund agent model upgrade",
        body="",
        page=PAGE,
        now=AT,
    )
    before = feed(session).documents()
    assert statuses(session)["refunds"] == "operational"
    [upcoming] = before["scheduled-maintenances/upcoming.json"]["scheduled_maintenances"]
    assert (upcoming["id"], upcoming["status"], upcoming["impact"]) == (
        row.id,
        "scheduled",
        "maintenance",
    )
    assert upcoming["scheduled_for"] == "2026-12-01T10:00:00.000Z"
    during = feed(session, minutes=90).documents()
    assert statuses(session, minutes=90)["refunds"] == "under_maintenance"
    assert during["status.json"]["status"]["indicator"] == "maintenance"
    assert [m["status"] for m in during["summary.json"]["scheduled_maintenances"]] == [
        "in_progress"
    ]
    after = feed(session, minutes=150).documents()
    assert statuses(session, minutes=150)["refunds"] == "operational"
    [done] = after["scheduled-maintenances.json"]["scheduled_maintenances"]
    assert (done["status"], done["resolved_at"]) == ("completed", "2026-12-01T11:00:00.000Z")
    assert after["summary.json"]["scheduled_maintenances"] == []


def test_an_outage_outranks_a_maintenance(session: Session) -> None:
    apply_example(session)
    pages.add_maintenance(
        session,
        component_ids=["support-assistant"],
        start=AT,
        end=AT + timedelta(hours=1),
        title="Upgrade",
        body="",
        now=AT,
    )
    assert statuses(session)["support-assistant"] == "under_maintenance"
    publish(session, component_status="partial_outage")
    assert statuses(session)["support-assistant"] == "partial_outage"


@pytest.mark.parametrize(
    ("components", "hours", "title", "message"),
    [
        (["nope"], 1, "x", "nope is not one"),
        ([], 1, "x", "none given"),
        (["refunds"], -1, "x", "ends after it starts"),
        (["refunds"], 1, " ", "needs a title"),
    ],
)
def test_a_maintenance_is_refused_with_what_to_fix(
    session: Session, components: list[str], hours: int, title: str, message: str
) -> None:
    apply_example(session)
    with pytest.raises(InvalidInput, match=message):
        pages.add_maintenance(
            session,
            component_ids=components,
            start=AT,
            end=AT + timedelta(hours=hours),
            title=title,
            body="",
            now=AT,
        )


def test_history_is_90_days(session: Session) -> None:
    apply_example(session)
    publish(session, phase="resolved")
    assert len(feed(session, minutes=89 * 24 * 60).documents()["incidents.json"]["incidents"]) == 1
    assert feed(session, minutes=91 * 24 * 60).documents()["incidents.json"]["incidents"] == []


def test_confirming_replaces_the_earlier_subscription_and_stale_ones_go(
    session: Session,
) -> None:
    apply_example(session)
    email = SubscriberKind.email
    stale, _ = subscribers.subscribe(
        session, kind=email, address="old@example.com", component_ids=[], now=AT
    )
    first, token = subscribers.subscribe(
        session, kind=email, address="r@example.com", component_ids=["refunds"], now=AT
    )
    subscribers.confirm(session, token=token, now=AT)
    later = AT + timedelta(days=8)
    second, token = subscribers.subscribe(
        session, kind=email, address="r@example.com", component_ids=[], now=later
    )
    assert [r.id for r in subscribers.recipients(session, component_ids=["fraud-checks"])] == []
    subscribers.confirm(session, token=token, now=later)
    assert [r.id for r in subscribers.recipients(session, component_ids=["fraud-checks"])] == [
        second.id
    ]
    left = set(session.scalars(select(StatusSubscriber.id)))
    assert left == {second.id}  # the first replaced, the stale pending one dropped
    assert first.id != stale.id


def test_a_title_cannot_break_a_mail_header(session: Session) -> None:
    apply_example(session)
    outbox = Outbox().subscribe()
    _, token = subscribers.subscribe(
        session, kind=SubscriberKind.email, address="r@example.com", component_ids=[], now=AT
    )
    subscribers.confirm(session, token=token, now=AT)
    publish(session, title="Slow\r\nBcc: everyone@example.com\x00")
    [news] = outbox.messages
    assert news.subject == "[Status] Slow Bcc: everyone@example.com: investigating"


def test_restricting_an_incident_takes_it_off_the_page(session: Session) -> None:
    """Through the incidents' own flow, as `blastwall incident update --visibility` does."""
    apply_example(session)
    admin = Principal(name="casey", role=Role.admin)
    data = IncidentCreate(
        title="Support assistant answers slowly",
        archetype=Archetype.vendor_failure,
        severity=Severity.SEV2,
    )
    incident = incident_flows.open_incident(session, data=data, actor=admin)
    publish(session, incident_id=incident.id)
    assert session.scalar(select(func.count()).select_from(StatusIncident)) == 1
    incident_flows.update_incident(
        session,
        incident_id=incident.id,
        data=IncidentUpdate(visibility=Visibility.restricted),
        actor=admin,
    )
    assert session.scalar(select(func.count()).select_from(StatusIncident)) == 0
    assert feed(session).documents()["incidents.json"]["incidents"] == []
