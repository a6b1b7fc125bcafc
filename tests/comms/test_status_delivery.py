"""The status page's messages to its subscribers go out through the notifications outbox:
an e-mail to the subscriber's own address on the status page's e-mail channel, a webhook
with the Statuspage payload to the subscriber's URL; each once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from blastwall import pipeline
from blastwall.comms.delivery import DeliveryConfig, deliver_due
from blastwall.comms.models.notifications import OutboxMessage, OutboxState
from blastwall.comms.service import notifications as channels
from blastwall.db import Database
from blastwall.pipeline import StatusMessage
from blastwall.plugins import notifiers
from tests.support.notify import Receiver, SmtpServer, smtp_server

FAST = DeliveryConfig(max_attempts=2, retry_seconds=10, retry_max_seconds=60, lease_seconds=30)


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    yield from smtp_server(tmp_path_factory.mktemp("smtp"))


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def test_a_confirmation_mail_goes_to_the_subscriber_and_a_webhook_to_its_url(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    with db.transaction() as session:
        channels.add_channel(
            session,
            name="status-page-email",
            kind="email",
            settings=smtp.settings(),
            notifiers=notifiers(),
            actor="t",
        )
    mail = StatusMessage(
        recipient_kind="email",
        address="reader@example.com",
        subject="Confirm your subscription",
        body="Open the link to confirm.",
        key="confirm:1",
    )
    payload = {"page": {"id": "blastwall"}, "incident": {"name": "Answers are slow"}}
    hook = StatusMessage(
        recipient_kind="webhook",
        address=receiver.url("/subscriber"),
        subject="Answers are slow",
        body="",
        key="status-update:1:2",
        payload=payload,
    )
    before = len(smtp.mailbox.messages)
    with db.transaction() as session:
        for event in (mail, hook, mail):  # the repeat is dropped by its key
            pipeline.publish(session, event)
    assert deliver_due(db, config=FAST) == 2
    received = smtp.mailbox.wait_for(before + 1)[before:]
    assert [m["To"] for m in received] == ["reader@example.com"]
    assert received[0]["Subject"] == "Confirm your subscription"
    assert smtp.mailbox.messages[before][1] == ["reader@example.com"]
    (request,) = receiver.at("/subscriber")
    assert request.json() == payload
    with db.session(read_only=True) as session:
        states = set(session.scalars(select(OutboxMessage.state)))
    assert states == {OutboxState.delivered}
