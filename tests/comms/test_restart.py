"""Nothing is lost when the server dies mid-send: a real `blastwall serve` is killed while a
receiver holds the notification's request open; started again, it sends the message again
(its lease ran out), with the same webhook-id, and records it delivered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from blastwall.comms.models.notifications import Attempt, OutboxMessage, OutboxState
from blastwall.db import Database
from tests.support.containment_live import Installation, wait_for
from tests.support.notify import WEBHOOK_SECRET, Receiver, verify_standard_webhook

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def outbox_of(data: Path) -> list[tuple[OutboxState, int, int]]:
    """Each message's state, tries recorded and receipts, read from the installation's file."""
    db = Database.from_url(f"sqlite:///{data / 'blastwall.db'}")
    try:
        with db.session(read_only=True) as session:
            found = []
            for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)):
                receipts = session.scalars(select(Attempt).where(Attempt.message_id == row.id))
                found.append((row.state, row.attempts, len(list(receipts))))
            return found
    finally:
        db.engine.dispose()


def test_a_message_in_flight_when_the_server_is_killed_is_delivered_after_the_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    with Installation(tmp_path) as server:
        server.env.update(
            BLASTWALL_NOTIFICATION_LEASE_SECONDS="2",
            BLASTWALL_NOTIFICATION_POLL_INTERVAL="0.2",
            BLASTWALL_DETECTION_WORKERS="0",
        )
        server.cli(
            "notify", "channel", "add", "responders", "webhook",
            "--set", f"url={receiver.url('/restart')}", "--secret", f"secret={WEBHOOK_SECRET}",
        )  # fmt: skip
        server.cli(
            "incident", "open", "--title", "Chatbot leaks", "--archetype", "data_exfiltration",
            "--severity", "SEV1", "--reason", "customer data",
        )  # fmt: skip
        receiver.release.clear()  # the receiver holds what arrives, unanswered
        server.start()
        wait_for("the first try to arrive", lambda: len(receiver.requests) >= 1)
        server.kill()
        assert outbox_of(tmp_path / "data") == [(OutboxState.pending, 0, 0)]

        receiver.release.set()
        server.start()
        wait_for(
            "the message to be delivered",
            lambda: outbox_of(tmp_path / "data") == [(OutboxState.delivered, 1, 1)],
        )
    first, again = receiver.at("/restart")
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert first.body == again.body and verify_standard_webhook(again)
