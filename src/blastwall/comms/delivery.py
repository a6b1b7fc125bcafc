"""Delivery of the notification outbox: `deliver_due` sends, in one pass, what is due, and
the `DeliveryLoop` runs passes in a thread of `blastwall serve` (one per server process),
with the periodic jobs it is given (the update reminders' tick).

A pass is three steps: lease the due messages (one transaction), send them at once from a
pool of threads (no transaction open), and record each try's receipt (one transaction):
delivered, due again after an exponential back-off with jitter, or dead after the last try.
A process that dies mid-send leaves its lease to run out; the message is then sent again,
with the same idempotency key (at least once; receivers drop the repeat)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from blastwall.comms.flows.notifications import STATUS_WEBHOOKS
from blastwall.comms.notifiers.base import ChannelConfig, Message, Receipt
from blastwall.comms.service import notifications as channels
from blastwall.comms.service import outbox
from blastwall.db import Database, utcnow
from blastwall.plugins import Notifier, notifiers
from blastwall.settings import Settings

__all__ = ["DeliveryConfig", "DeliveryLoop", "Job", "deliver_due", "send", "send_test"]

log = logging.getLogger("blastwall.comms")

Job = Callable[[Session, datetime], object]
"""A periodic job of the delivery loop: run in a transaction of its own, with the time."""


@dataclass(frozen=True)
class DeliveryConfig:
    max_attempts: int = 8
    retry_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    lease_seconds: float = 120.0
    concurrency: int = 8
    batch: int = 500

    @classmethod
    def of(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            max_attempts=settings.notification_max_attempts,
            retry_seconds=settings.notification_retry_seconds,
            retry_max_seconds=settings.notification_retry_max_seconds,
            lease_seconds=settings.notification_lease_seconds,
            concurrency=settings.notification_concurrency,
        )

    def backoff(self, tries: int) -> float:
        """Seconds before the try after `tries` failed ones: doubling from `retry_seconds`,
        up to `retry_max_seconds`, plus up to a quarter more at random."""
        wait = min(self.retry_max_seconds, self.retry_seconds * 2.0 ** max(tries - 1, 0))
        return float(wait * (1 + random.random() / 4))


def send(
    message: Message, channel: ChannelConfig | None, found: Mapping[str, Notifier]
) -> tuple[Receipt, float]:
    """One try on one channel, and the seconds it took; a notifier's error is the receipt
    of a failed try, never lost."""
    started = time.perf_counter()
    if channel is None:
        receipt = Receipt(
            ok=False,
            status="no channel",
            detail="the channel was removed or disabled; add it again, then resend",
        )
    elif channel.kind not in found:
        receipt = Receipt(
            ok=False, status="no notifier", detail=f"no notifier of kind '{channel.kind}'"
        )
    else:
        try:
            receipt = found[channel.kind].send(message, channel)
        except Exception as exc:  # a notifier's fault is recorded as the try's outcome
            log.exception("the %s notifier failed on channel %s", channel.kind, channel.name)
            receipt = Receipt(ok=False, status="notifier error", detail=repr(exc)[:500])
    return receipt, time.perf_counter() - started


def addressed(message: Message, name: str, channel: ChannelConfig | None) -> ChannelConfig | None:
    """The channel a message goes out on: its channel's, but for a message to one status page
    subscriber (`recipient`), that subscriber's address (the e-mail channel's `to`) or URL."""
    recipient = message.data.get("recipient")
    if not isinstance(recipient, str):
        return channel
    if name == STATUS_WEBHOOKS:
        return ChannelConfig(name=name, kind="status_webhook", settings={"url": recipient})
    if channel is None:
        return None
    return replace(channel, settings={**channel.settings, "to": recipient})


def deliver_due(
    db: Database,
    now: datetime | None = None,
    *,
    config: DeliveryConfig | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> int:
    """Send the messages due at `now` (default: the time), at most `config.batch`, at once;
    answer how many were tried."""
    config = config or DeliveryConfig()
    at = now or utcnow()
    with db.session(read_only=True) as session:
        if not outbox.any_due(session, now=at):
            return 0
    with db.transaction() as session:
        claimed = outbox.claim_due(
            session,
            now=at,
            lease_until=at + timedelta(seconds=config.lease_seconds),
            limit=config.batch,
        )
        configs = {
            row.name: channels.channel_config(row)
            for row in channels.enabled_channels(session, names={m.channel for m in claimed})
        }
        work = [
            (row.id, message, addressed(message, row.channel, configs.get(row.channel)))
            for row in claimed
            for message in [outbox.message_of(row)]
        ]
    if not work:
        return 0
    found = notifiers()
    own = pool is None
    pool = pool or ThreadPoolExecutor(min(config.concurrency, len(work)))
    try:
        results = list(pool.map(lambda w: send(w[1], w[2], found), work))
    finally:
        if own:
            pool.shutdown()
    done = now or utcnow()
    with db.transaction() as session:
        for (message_id, _, _), (receipt, seconds) in zip(work, results, strict=True):
            outbox.record_attempt(
                session,
                message_id=message_id,
                receipt=receipt,
                at=done,
                seconds=seconds,
                max_attempts=config.max_attempts,
                backoff=config.backoff,
            )
    return len(work)


def send_test(db: Database, *, name: str, actor: str) -> Receipt:
    """Send a test message on the channel `name` now, outside the outbox; its receipt."""
    with db.session(read_only=True) as session:
        channel = channels.channel_config(channels.get_channel(session, name=name))
    now = utcnow()
    message = Message(
        key=f"test:{name}:{now.isoformat()}",
        event="test",
        subject=f"Blastwall test message to {name}",
        text=f"A test of the notification channel '{name}', sent by {actor}.",
        created_at=now,
        facts=(("Channel", name), ("Sent by", actor)),
    )
    receipt, _ = send(message, channel, notifiers())
    return receipt


class DeliveryLoop:
    """`deliver_due` over and over in a thread of its own, and the periodic `jobs` (reminders
    of updates and obligation clocks) every `job_interval` seconds; it waits
    `poll_interval` seconds when a pass found nothing, or until a transaction that enqueued
    messages commits (`outbox.DUE`)."""

    def __init__(
        self,
        db: Database,
        *,
        config: DeliveryConfig,
        poll_interval: float = 1.0,
        jobs: Sequence[Job] = (),
        job_interval: float = 15.0,
    ) -> None:
        self.db = db
        self.config = config
        self.poll_interval = poll_interval
        self.jobs = list(jobs)
        self.job_interval = job_interval
        self._jobs_ran = float("-inf")
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="notify-send")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notify-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        outbox.DUE.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run_jobs(self) -> None:
        for job in self.jobs:
            try:
                with self.db.transaction() as session:
                    job(session, utcnow())
            except Exception:
                log.exception("the periodic job %r failed; it runs again", job)

    def _run(self) -> None:
        while not self._stopped.is_set():
            outbox.DUE.clear()
            sent = 0
            try:
                sent = deliver_due(self.db, config=self.config, pool=self._pool)
            except Exception:
                log.exception("a notification delivery pass failed; the next one tries again")
            if time.monotonic() - self._jobs_ran >= self.job_interval:
                self._jobs_ran = time.monotonic()
                self._run_jobs()
            if not sent:
                outbox.DUE.wait(self.poll_interval)
