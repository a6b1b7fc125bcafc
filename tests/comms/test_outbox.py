"""From the pipeline's events to a receiver: what is enqueued where (triggers, the owning
team's on-call, restricted incidents), idempotency, delivery with receipts, back-off,
the dead-letter list and resending, and leases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from blastwall import pipeline
from blastwall.auth.roles import Principal, Role
from blastwall.comms.delivery import DeliveryConfig, deliver_due
from blastwall.comms.flows import notifications
from blastwall.comms.models.notifications import OutboxMessage, OutboxState
from blastwall.comms.service import notifications as channels
from blastwall.comms.service import outbox
from blastwall.comms.triggers import load_triggers
from blastwall.db import Database, utcnow
from blastwall.incidents import flows as incidents
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.models import TimelineEntry
from blastwall.incidents.schemas import (
    IncidentCreate,
    IncidentUpdate,
    Severity,
    StatusChange,
    Visibility,
)
from blastwall.pipeline import IncidentChanged, ReminderDue, UpdatePublished
from blastwall.plugins import notifiers
from blastwall.settings import Settings
from blastwall.wiring import install
from tests.support.notify import WEBHOOK_SECRET, Receiver, verify_standard_webhook

ALICE = Principal(name="alice", role=Role.admin)
TRIGGERS = load_triggers(None)
FAST = DeliveryConfig(max_attempts=3, retry_seconds=10, retry_max_seconds=60, lease_seconds=30)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(autouse=True)
def _fresh(receiver: Receiver) -> None:
    receiver.reset()


def add_channel(db: Database, name: str, kind: str, settings: dict[str, Any], **more: Any) -> None:
    with db.transaction() as session:
        channels.add_channel(
            session,
            name=name,
            kind=kind,
            settings=settings,
            notifiers=notifiers(),
            actor="t",
            **more,
        )


def webhook(db: Database, receiver: Receiver, name: str, **more: Any) -> None:
    settings = {"url": receiver.url(f"/{name}"), "secret": WEBHOOK_SECRET}
    add_channel(db, name, "webhook", settings, **more)


def open_incident(db: Database, **fields: Any) -> int:
    data = IncidentCreate.model_validate(
        {
            "title": "Refund agent refunds twice",
            "archetype": "agentic_misalignment",
            "severity": "SEV2",
            **fields,
        }
    )
    with db.transaction() as session:
        return incidents.open_incident(session, data=data, actor=ALICE).id


def rows(db: Database, **where: Any) -> list[OutboxMessage]:
    with db.session(read_only=True) as session:
        query = select(OutboxMessage).filter_by(**where).order_by(OutboxMessage.id)
        return list(session.scalars(query))


def test_an_opened_incident_reaches_the_responders_and_the_owning_teams_on_call(
    db: Database, inventory: list[str], receiver: Receiver
) -> None:
    webhook(db, receiver, "responders")
    settings = {"routing_key": "RK", "url": receiver.url("/pagerduty")}
    add_channel(db, "oncall-payments-automation", "pagerduty", settings)
    webhook(db, receiver, "customers", public=True)  # no trigger names it
    incident_id = open_incident(db, systems=["refund-agent"])
    queued = rows(db, incident_id=incident_id)
    assert sorted(r.channel for r in queued) == ["oncall-payments-automation", "responders"]
    assert all(r.state == OutboxState.pending and r.event == "opened" for r in queued)
    with db.session(read_only=True) as session:
        (entry,) = session.scalars(
            select(TimelineEntry).filter_by(incident_id=incident_id, kind="notified")
        )
    assert entry.data["channels"] == ["oncall-payments-automation", "responders"]
    assert entry.text.startswith("Notification queued for oncall-payments-automation, responders")

    assert deliver_due(db, config=FAST) == 2
    hook = receiver.at("/responders")[0]
    assert verify_standard_webhook(hook)
    assert hook.headers["webhook-id"].startswith(f"incident:{incident_id}:opened:")
    assert hook.json()["data"]["systems"] == ["refund-agent"]
    assert "Refund agent refunds twice" in hook.json()["data"]["subject"]
    page = receiver.at("/pagerduty")[0].json()
    assert page["dedup_key"] == f"blastwall-incident-{incident_id}"
    assert page["payload"]["severity"] == "error"  # SEV2
    delivered = rows(db, incident_id=incident_id)
    assert {r.state for r in delivered} == {OutboxState.delivered}
    with db.session(read_only=True) as session:
        (attempt,) = outbox.attempts_of(session, message_id=delivered[0].id)
    assert attempt.ok and attempt.status == "HTTP 200" and attempt.code == 200


def test_each_incident_change_is_published(db: Database, receiver: Receiver) -> None:
    webhook(db, receiver, "responders")
    incident_id = open_incident(db, severity="SEV3")
    with db.transaction() as session:
        raise_ = IncidentUpdate(severity=Severity.SEV1, severity_reason="customers hit")
        incidents.update_incident(session, incident_id=incident_id, data=raise_, actor=ALICE)
        lower = IncidentUpdate(severity=Severity.SEV2, severity_reason="contained")
        incidents.update_incident(session, incident_id=incident_id, data=lower, actor=ALICE)
        for status in (Status.investigating, Status.recovering, Status.resolved):
            change = StatusChange(status=status)
            incidents.change_status(session, incident_id=incident_id, change=change, actor=ALICE)
    events = [r.event for r in rows(db, incident_id=incident_id)]
    assert events == [
        "opened",
        "escalated",
        "severity_changed",
        "status_changed",
        "status_changed",
        "resolved",
    ]
    escalated = rows(db, incident_id=incident_id, event="escalated")[0]
    assert outbox.message_of(escalated).text == "Severity SEV3 → SEV1: customers hit"


def test_enqueueing_the_same_event_twice_adds_one_message(db: Database, receiver: Receiver) -> None:
    webhook(db, receiver, "responders")
    event = IncidentChanged(
        incident_id=99,
        change="containment_breached",
        at=utcnow(),
        actor="verifier",
        severity="SEV1",
        restricted=False,
        detail="guard bypassed",
    )
    with db.transaction() as session:
        assert notifications.incident_changed(session, event, policy=TRIGGERS) == ["responders"]
    with db.transaction() as session:
        assert notifications.incident_changed(session, event, policy=TRIGGERS) == []
    assert len(rows(db, incident_id=99)) == 1
    assert (
        rows(db, incident_id=99)[0].key
        == f"incident:99:containment_breached:{event.at.isoformat()}:responders"
    )


def test_a_restricted_incident_reaches_no_public_channel_and_says_only_its_number(
    db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    policy = tmp_path / "notifications.yaml"
    policy.write_text("triggers:\n  opened:\n    channels: [responders, status-subscribers]\n")
    install(Settings(notification_policy=policy))
    webhook(db, receiver, "responders")
    webhook(db, receiver, "status-subscribers", public=True)
    secret = open_incident(db, title="Leak of alice@example.com", visibility=Visibility.restricted)
    public = open_incident(db, title="Slow answers")
    assert [r.channel for r in rows(db, incident_id=secret)] == ["responders"]
    assert sorted(r.channel for r in rows(db, incident_id=public)) == [
        "responders",
        "status-subscribers",
    ]
    message = outbox.message_of(rows(db, incident_id=secret)[0])
    shown = f"{message.subject} {message.text} {message.facts} {message.data}"
    assert "alice" not in shown and "SEV2" not in shown and "refund-agent" not in shown
    assert message.subject == f"Restricted incident {secret}: opened"


def published(**fields: Any) -> UpdatePublished:
    values: dict[str, Any] = {
        "update_id": 5,
        "incident_id": 12,
        "audience": "customers",
        "channels": ("customers-slack", "status-subscribers"),
        "public": True,
        "restricted": False,
        "system_ids": ("support-chatbot",),
        "title": "Degraded answers",
        "body": "What happened: wrong answers. What we don't know yet: none.",
        "sections": {"what_happened": "wrong answers"},
        "phase": "identified",
        "impact": "minor",
        "component_status": "degraded_performance",
        "published_at": utcnow(),
        "published_by": "carol",
        "next_update_at": None,
    }
    return UpdatePublished(**{**values, **fields})


def test_a_published_update_goes_to_its_audiences_channels(
    db: Database, receiver: Receiver
) -> None:
    add_channel(db, "customers-slack", "slack", {"url": receiver.url("/slack")}, public=True)
    webhook(db, receiver, "responders")
    with db.transaction() as session:
        pipeline.publish(session, published())
        pipeline.publish(session, published(update_id=6, incident_id=13, restricted=True))
    (update,) = rows(db, incident_id=12)
    assert (update.key, update.channel) == ("update:5:customers-slack", "customers-slack")
    assert rows(db, incident_id=13) == []  # its only channel is public
    deliver_due(db, config=FAST)
    slack = receiver.at("/slack")[0].json()
    assert slack["blocks"][1]["text"]["text"].startswith("What happened: wrong answers.")


def test_a_reminder_is_sent_once_per_key(db: Database, receiver: Receiver) -> None:
    webhook(db, receiver, "responders")
    reminder = ReminderDue(
        incident_id=14,
        audience="responders",
        channels=("responders",),
        level="overdue",
        recipient="dave",
        due_at=utcnow(),
        key="14:responders:3:overdue",
        restricted=False,
    )
    for _ in range(2):  # the scheduler fired it again after a restart
        with db.transaction() as session:
            pipeline.publish(session, reminder)
    (row,) = rows(db, incident_id=14)
    assert row.key == "reminder:14:responders:3:overdue:responders"
    assert "dave" in outbox.message_of(row).text and "was due" in outbox.message_of(row).text


def _one(db: Database) -> OutboxMessage:
    with db.transaction() as session:
        pipeline.publish(
            session,
            IncidentChanged(
                incident_id=21,
                change="opened",
                at=utcnow(),
                actor="a",
                severity="SEV3",
                restricted=False,
            ),
        )
    (row,) = rows(db, incident_id=21)
    return row


def test_failures_back_off_then_go_to_the_dead_letter_list_and_can_be_resent(
    db: Database, receiver: Receiver
) -> None:
    webhook(db, receiver, "responders")
    row = _one(db)
    receiver.answer = lambda request: 503
    start = utcnow() + timedelta(seconds=1)

    assert deliver_due(db, start, config=FAST) == 1
    (row,) = rows(db, id=row.id)
    assert row.attempts == 1 and row.state == OutboxState.pending
    assert start + timedelta(seconds=10) <= row.next_attempt_at <= start + timedelta(seconds=12.5)
    assert row.last_error.startswith("HTTP 503")
    assert deliver_due(db, start + timedelta(seconds=5), config=FAST) == 0  # not due yet
    assert deliver_due(db, start + timedelta(seconds=13), config=FAST) == 1
    (row,) = rows(db, id=row.id)
    gap = row.next_attempt_at - (start + timedelta(seconds=13))
    assert timedelta(seconds=20) <= gap <= timedelta(seconds=25)
    assert deliver_due(db, start + timedelta(seconds=60), config=FAST) == 1
    (row,) = rows(db, id=row.id)
    assert (row.state, row.attempts) == (OutboxState.dead, 3)
    with db.session(read_only=True) as session:
        dead, _ = outbox.list_messages(session, limit=10, state=OutboxState.dead)
    assert [d.id for d in dead] == [row.id]
    assert deliver_due(db, start + timedelta(hours=1), config=FAST) == 0

    receiver.answer = lambda request: 200
    with db.transaction() as session:
        outbox.resend(session, message_id=row.id, now=start + timedelta(hours=1))
    assert deliver_due(db, start + timedelta(hours=1), config=FAST) == 1
    (row,) = rows(db, id=row.id)
    assert row.state == OutboxState.delivered
    with db.session(read_only=True) as session:
        tries = outbox.attempts_of(session, message_id=row.id)
    assert [(t.ok, t.code) for t in tries] == [(False, 503)] * 3 + [(True, 200)]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


def test_a_leased_message_is_not_claimed_twice_until_its_lease_runs_out(
    db: Database, receiver: Receiver
) -> None:
    webhook(db, receiver, "responders")
    row = _one(db)
    now = utcnow() + timedelta(seconds=1)
    with db.transaction() as session:
        first = outbox.claim_due(session, now=now, lease_until=now + timedelta(seconds=30), limit=9)
    with db.transaction() as session:
        second = outbox.claim_due(
            session, now=now, lease_until=now + timedelta(seconds=30), limit=9
        )
    assert [r.id for r in first] == [row.id] and second == []
    # The process that held it died mid-send: once its lease has run out, it is sent.
    assert deliver_due(db, now + timedelta(seconds=10), config=FAST) == 0
    assert deliver_due(db, now + timedelta(seconds=31), config=FAST) == 1
    assert rows(db, id=row.id)[0].state == OutboxState.delivered


def test_a_removed_channel_is_a_failed_try(db: Database, receiver: Receiver) -> None:
    webhook(db, receiver, "responders")
    row = _one(db)
    with db.transaction() as session:
        channels.remove_channel(session, name="responders")
    deliver_due(db, config=FAST)
    (row,) = rows(db, id=row.id)
    assert row.state == OutboxState.pending and row.last_error.startswith("no channel")


def test_a_disabled_channel_gets_nothing_new(db: Database, receiver: Receiver) -> None:
    webhook(db, receiver, "responders", enabled=False)
    with db.transaction() as session:
        pipeline.publish(
            session,
            IncidentChanged(
                incident_id=31,
                change="opened",
                at=utcnow(),
                actor="a",
                severity="SEV3",
                restricted=False,
            ),
        )
    assert rows(db, incident_id=31) == []
