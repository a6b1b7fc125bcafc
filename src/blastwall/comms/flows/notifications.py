"""What is notified, where: the pipeline's incident changes, published updates and due
reminders become outbox messages, one per channel, in the publisher's transaction (the
delivery loop, `blastwall.comms.delivery`, sends them once it commits).

The notification policy (`blastwall.comms.triggers`) says which events go to which
channels. A restricted incident reaches no public channel, and its messages say no more
than its number and what happened to it: its title, systems, severity and the words of an
update stay in Blastwall, where only its participants see them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal, Role
from blastwall.comms.notifiers.base import Message
from blastwall.comms.service import notifications as channels
from blastwall.comms.service import outbox
from blastwall.comms.triggers import Trigger, TriggerPolicy
from blastwall.db import utcnow
from blastwall.errors import NotFound
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.inventory.models import System
from blastwall.pipeline import IncidentChanged, ReminderDue, StatusMessage, UpdatePublished

__all__ = [
    "STATUS_WEBHOOKS",
    "incident_changed",
    "notify",
    "reminder_due",
    "status_message",
    "update_published",
]

STATUS_WEBHOOKS = "status-page-webhooks"
"""The outbox's channel name for the status page's webhook subscribers: each message goes to
its own subscriber's URL (`recipient`), through the `status_webhook` notifier."""
NOTIFIER = Principal(name="blastwall:notifications", role=Role.admin)
"""Who reads an incident to tell of it (restricted ones included)."""
PAGER_ACTION = {"resolved": "resolve", "containment_applied": "acknowledge"}
"""PagerDuty's event action for an incident change; every other change triggers."""
CHANGE_WORDS = {
    "opened": "opened",
    "escalated": "escalated",
    "severity_changed": "severity changed",
    "status_changed": "status changed",
    "containment_applied": "containment applied",
    "containment_breached": "containment breached",
    "resolved": "resolved",
}


def dedup_key(incident_id: int) -> str:
    """The alert of an incident at PagerDuty: one per incident, triggered, acknowledged and
    resolved through its life."""
    return f"blastwall-incident-{incident_id}"


def _owning_teams(session: Session, system_ids: Iterable[str]) -> list[str]:
    ids = sorted(set(system_ids))
    if not ids:
        return []
    query = select(System.owner_team).where(System.id.in_(ids))
    return sorted({team for team in session.scalars(query) if team})


def _channel_names(
    session: Session,
    trigger: Trigger,
    policy: TriggerPolicy,
    *,
    system_ids: Iterable[str] = (),
    audience: Iterable[str] = (),
) -> list[str]:
    names = list(trigger.channels)
    if trigger.on_call:
        names += policy.on_call_channels(_owning_teams(session, system_ids))
    if trigger.audience:
        names += list(audience)
    return list(dict.fromkeys(names))


def notify(
    session: Session,
    *,
    message: Message,
    names: Iterable[str],
    restricted: bool,
    now: datetime | None = None,
) -> list[str]:
    """Put `message` in the outbox for each enabled channel of `names` (public ones left
    out for a restricted incident), keyed `<message key>:<channel>`; answer the channels
    it was added for (a key already there is not added again). The incident's timeline
    says which channels it went to (`notified`); the receipts of its tries are in the
    outbox (`blastwall notifications --incident N`)."""
    now = now or utcnow()
    added: list[str] = []
    for channel in channels.enabled_channels(session, names=names):
        if restricted and channel.public:
            continue
        keyed = Message(**{**message.__dict__, "key": f"{message.key}:{channel.name}"})
        if outbox.enqueue(session, message=keyed, channel=channel.name, now=now):
            added.append(channel.name)
    incident = session.get(Incident, message.incident_id) if message.incident_id else None
    if added and incident is not None:
        incidents.write_entry(
            session,
            incident,
            kind="notified",
            actor=NOTIFIER,
            text=f"Notification queued for {', '.join(added)}: {message.subject}",
            data={"event": message.event, "key": message.key, "channels": added},
            at=now,
        )
    return added


def _title(session: Session, incident_id: int) -> str:
    try:
        return incidents.get_incident(session, incident_id=incident_id, principal=NOTIFIER).title
    except NotFound:
        return ""


def incident_changed(
    session: Session, event: IncidentChanged, *, policy: TriggerPolicy
) -> list[str]:
    """Notify an incident's change on the channels its trigger names."""
    trigger = policy.triggers.get(event.change)
    if trigger is None or not trigger.admits(event.severity):
        return []
    words = CHANGE_WORDS.get(event.change, event.change.replace("_", " "))
    if event.restricted:
        subject = f"Restricted incident {event.incident_id}: {words}"
        text = (
            f"Restricted incident {event.incident_id}: {words}. Its details are in Blastwall, "
            "for its participants."
        )
        facts: tuple[tuple[str, str], ...] = (("Incident", str(event.incident_id)),)
        severity = None
    else:
        title = _title(session, event.incident_id)
        subject = f"[{event.severity}] Incident {event.incident_id} {words}: {title}".rstrip(": ")
        text = event.detail or f"Incident {event.incident_id} {words}."
        facts = (
            ("Incident", str(event.incident_id)),
            ("Severity", event.severity),
            ("Systems", ", ".join(event.system_ids) or "-"),
            ("By", event.actor),
        )
        severity = event.severity
    message = Message(
        key=f"incident:{event.incident_id}:{event.change}:{event.at.isoformat()}",
        event=event.change,
        subject=subject,
        text=text,
        created_at=event.at,
        incident_id=event.incident_id,
        severity=severity,
        restricted=event.restricted,
        facts=facts,
        data={"change": event.change, "at": event.at.isoformat()}
        | ({} if event.restricted else {"systems": list(event.system_ids)}),
        action=PAGER_ACTION.get(event.change, "trigger"),
        dedup_key=dedup_key(event.incident_id),
    )
    names = _channel_names(session, trigger, policy, system_ids=event.system_ids)
    return notify(session, message=message, names=names, restricted=event.restricted)


def update_published(
    session: Session, event: UpdatePublished, *, policy: TriggerPolicy
) -> list[str]:
    """Notify a published update on its audience's channels (and those its trigger names),
    in the audience's rendering (already redacted for it)."""
    trigger = policy.triggers.get("update_published")
    if trigger is None:
        return []
    if event.restricted:
        subject = f"Restricted incident {event.incident_id}: update to {event.audience}"
        text = (
            f"An update on restricted incident {event.incident_id} was published to "
            f"{event.audience}. Read it in Blastwall."
        )
        facts: tuple[tuple[str, str], ...] = (("Incident", str(event.incident_id)),)
        data: dict[str, object] = {"update_id": event.update_id, "audience": event.audience}
    else:
        subject = f"Incident {event.incident_id} update: {event.title}"
        text = event.body
        facts = (
            ("Incident", str(event.incident_id)),
            ("Status", event.phase),
            ("Impact", event.impact),
        )
        if event.next_update_at is not None:
            facts += (("Next update", event.next_update_at.isoformat()),)
        data = {
            "update_id": event.update_id,
            "audience": event.audience,
            "sections": dict(event.sections),
            "phase": event.phase,
            "impact": event.impact,
            "component_status": event.component_status,
            "systems": list(event.system_ids),
            "published_by": event.published_by,
            "next_update_at": event.next_update_at.isoformat() if event.next_update_at else None,
        }
    message = Message(
        key=f"update:{event.update_id}",
        event="update_published",
        subject=subject,
        text=text,
        created_at=event.published_at,
        incident_id=event.incident_id,
        restricted=event.restricted,
        facts=facts,
        data=data,
        dedup_key=dedup_key(event.incident_id),
    )
    names = _channel_names(
        session, trigger, policy, system_ids=event.system_ids, audience=event.channels
    )
    return notify(session, message=message, names=names, restricted=event.restricted)


def _reminder_words(event: ReminderDue, incident: str) -> tuple[str, str]:
    """A reminder's subject and text: of an update due to an audience, or of an obligation's
    clock (`clock_50`, `clock_75`, `clock_90`: that share of its time has passed)."""
    due = event.due_at.isoformat()
    if event.level.startswith("clock_"):
        share = event.level.removeprefix("clock_")
        return (
            f"Obligation clock at {share} %: {incident}",
            f"{event.recipient}: {share} % of the time to a reporting deadline of {incident} "
            f"has passed; it is due at {due} (`blastwall obligations {event.incident_id}`).",
        )
    if event.audience == "legal":
        return (
            f"Obligation overdue: {incident}",
            f"{event.recipient}: a reporting deadline of {incident} passed at {due} "
            f"(`blastwall obligations {event.incident_id}`).",
        )
    overdue = event.level != "due"
    return (
        f"Update to {event.audience} {'overdue' if overdue else 'due'}: {incident}",
        f"{event.recipient}: the update to {event.audience} on {incident} "
        f"{'was' if overdue else 'is'} due at {due}.",
    )


def reminder_due(session: Session, event: ReminderDue, *, policy: TriggerPolicy) -> list[str]:
    """Remind `recipient` that an update is due, on the audience's channels."""
    trigger = policy.triggers.get("reminder_due")
    if trigger is None:
        return []
    incident = f"{'restricted ' if event.restricted else ''}incident {event.incident_id}"
    subject, text = _reminder_words(event, incident)
    message = Message(
        key=f"reminder:{event.key}",
        event="reminder_due",
        subject=subject,
        text=text,
        created_at=utcnow(),
        incident_id=event.incident_id,
        restricted=event.restricted,
        facts=(("Incident", str(event.incident_id)), ("Reminded", event.recipient)),
        data={
            "audience": event.audience,
            "level": event.level,
            "recipient": event.recipient,
            "due_at": event.due_at.isoformat(),
        },
        dedup_key=dedup_key(event.incident_id),
    )
    names = _channel_names(session, trigger, policy, audience=event.channels)
    return notify(session, message=message, names=names, restricted=event.restricted)


def status_message(session: Session, event: StatusMessage, *, email_channel: str) -> bool:
    """Put a status page message to one subscriber in the outbox: an e-mail goes out on the
    e-mail channel `email_channel` (setting `status_email_channel`) to the subscriber's
    address; a webhook to the subscriber's URL. Answers whether it was added (a key already
    there is not)."""
    email = event.recipient_kind == "email"
    message = Message(
        key=f"status:{event.key}",
        event="status_page",
        subject=event.subject,
        text=event.body,
        created_at=utcnow(),
        data=(
            {"recipient": event.address}
            if email
            else {"recipient": event.address, "payload": dict(event.payload)}
        ),
    )
    channel = email_channel if email else STATUS_WEBHOOKS
    return outbox.enqueue(session, message=message, channel=channel, now=message.created_at)
