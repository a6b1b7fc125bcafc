"""The status page's steps: what it takes from the updates published publicly, the maintenance
windows, and the messages to its subscribers, which it hands to the notifications as
`StatusMessage` events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.comms.models.statuspage import StatusIncident, StatusSubscriber, SubscriberKind
from blastwall.comms.service import statuspage as pages
from blastwall.comms.service import statuspage_subscribers as subscribers
from blastwall.comms.service.statuspage import PageInfo, Published
from blastwall.comms.service.statuspage_feed import PAGE_ID, Feed
from blastwall.db import utcnow
from blastwall.pipeline import IncidentChanged, StatusMessage, UpdatePublished

__all__ = ["add_maintenance", "incident_changed", "subscribe", "update_published"]


def update_published(
    session: Session, event: UpdatePublished, *, page: PageInfo
) -> StatusIncident | None:
    """Put a published update on the page, when its audience is public and its incident is
    not restricted (whatever else is asked), and tell the subscribers of its components.
    Answers the status incident, None where the update is not for the page."""
    if not event.public or event.restricted:
        return None
    incident, update = pages.record_update(
        session,
        published=Published(
            update_id=event.update_id,
            incident_id=event.incident_id,
            system_ids=event.system_ids,
            title=event.title,
            body=event.body,
            phase=event.phase,
            impact=event.impact,
            component_status=event.component_status,
            at=event.published_at,
        ),
    )
    if update is not None:
        _tell(session, incident, key=f"status-update:{update.id}", page=page)
    return incident


def incident_changed(session: Session, event: IncidentChanged) -> None:
    """An incident that became restricted leaves the page, with every update it had there."""
    if event.restricted:
        pages.withdraw(session, incident_id=event.incident_id)


def add_maintenance(
    session: Session,
    *,
    component_ids: Sequence[str],
    start: datetime,
    end: datetime,
    title: str,
    body: str,
    page: PageInfo,
    now: datetime | None = None,
) -> StatusIncident:
    """Schedule a maintenance window and tell the subscribers of its components."""
    row = pages.add_maintenance(
        session,
        component_ids=component_ids,
        start=start,
        end=end,
        title=title,
        body=body,
        now=now or utcnow(),
    )
    _tell(session, row, key=f"status-maintenance:{row.id}", page=page, now=now)
    return row


def subscribe(
    session: Session,
    *,
    kind: SubscriberKind,
    address: str,
    component_ids: Sequence[str],
    page: PageInfo,
    now: datetime | None = None,
    private_webhooks: bool = False,
) -> StatusSubscriber:
    """A pending subscriber; the link that confirms it is sent to its address."""
    row, token = subscribers.subscribe(
        session,
        kind=kind,
        address=address,
        component_ids=component_ids,
        now=now or utcnow(),
        private_webhooks=private_webhooks,
    )
    confirm = f"{_base(page)}/subscribers/confirm/{token}"
    what = ", ".join(row.component_ids) or "every component"
    body = (
        f"Someone, we hope you, asked for news of {page.name} ({what}) at this address.\n\n"
        f"Confirm the subscription: {confirm}\n\n"
        "If it was not you, ignore this message: nothing is sent here unless the link is "
        "followed."
    )
    payload = {
        "meta": {"confirm": confirm, "documentation": f"{_base(page)}"},
        "page": {"id": PAGE_ID, "name": page.name, "url": page.url},
        "subscription": {"status": "pending", "components": list(row.component_ids)},
    }
    _send(session, row, f"Confirm your subscription to {page.name}", body, payload, "confirm")
    return row


def _one_line(text: str) -> str:
    """A subject as one line: no line break or other control character of a title reaches a
    mail header."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:250]


def _base(page: PageInfo) -> str:
    return page.url.rstrip("/")


def _tell(
    session: Session,
    row: StatusIncident,
    *,
    key: str,
    page: PageInfo,
    now: datetime | None = None,
) -> None:
    """Send news of a status incident (its latest update) to the subscribers concerned."""
    concerned = subscribers.recipients(session, component_ids=row.component_ids)
    if not concerned:
        return
    feed = Feed.read(session, page=page, now=now or utcnow())
    doc = feed.incident_doc(row)
    status = feed.status_doc()
    latest = doc["incident_updates"][0] if doc["incident_updates"] else None
    phase = str(doc["status"]).replace("_", " ")
    subject = _one_line(f"[{page.name}] {row.name}: {phase}")
    lines = [row.name, f"Status: {phase}; impact: {doc['impact']}"]
    if doc["components"]:
        lines.append("Affects: " + ", ".join(c["name"] for c in doc["components"]))
    if row.scheduled_for is not None:
        lines.append(f"Scheduled: {doc['scheduled_for']} to {doc['scheduled_until']}")
    if latest is not None:
        lines += ["", str(latest["body"])]
    lines += ["", f"The status page: {doc['shortlink']}"]
    page_doc = {
        "id": PAGE_ID,
        "status_indicator": status["indicator"],
        "status_description": status["description"],
    }
    for subscriber in concerned:
        unsubscribe = f"{_base(page)}/subscribers/unsubscribe/{subscriber.unsubscribe_token}"
        body = "\n".join([*lines, f"Unsubscribe: {unsubscribe}"])
        payload = {
            "meta": {"unsubscribe": unsubscribe, "documentation": _base(page)},
            "page": page_doc,
            "incident": doc,
        }
        _send(session, subscriber, subject, body, payload, key)


def _send(
    session: Session,
    subscriber: StatusSubscriber,
    subject: str,
    body: str,
    payload: dict[str, Any],
    key: str,
) -> None:
    pipeline.publish(
        session,
        StatusMessage(
            recipient_kind=subscriber.kind.value,
            address=subscriber.address,
            subject=subject,
            body=body,
            key=f"{key}:{subscriber.id}",
            payload=payload,
        ),
    )
