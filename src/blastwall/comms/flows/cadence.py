"""The cadence of status updates: when an update to an audience is due, who is reminded,
and snoozing a cadence.

An update to an audience is due at the last published update's `next_update_at`, or, before
the first one, the audience's interval after the incident opened (from the policy's
`cadence`, per severity). At the due time the incident commander is reminded (`due`); a grace
period later the communications lead (`overdue`); two grace periods later the deputy
commander (`overdue_deputy`). Whoever holds no such role is replaced by the commander, then
by whoever opened the incident.

`tick(session, now)` fires the reminders that have come by `now`: each once, ever. Its key
(incident, audience, due time, level) is recorded in `update_reminders`, so that a tick run
again, after a restart or in another process, fires none twice; the notifications' outbox
drops a repeated key as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Permission, Principal, Role
from blastwall.comms.audiences import AudiencePolicy
from blastwall.comms.models.updates import CadenceSnooze, StatusUpdate
from blastwall.comms.service import cadence as service
from blastwall.comms.update_schemas import SnoozeIn
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, Problem
from blastwall.incidents import service as incidents
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.models import Incident
from blastwall.incidents.roles import list_roles
from blastwall.incidents.schemas import IncidentRole, Visibility

__all__ = ["CADENCE", "LEVELS", "Due", "due_at", "schedule", "snooze", "tick"]

CADENCE = Principal(name="blastwall:cadence", role=Role.admin)
#: The reminder levels, in order: who each reminds, and how many grace periods after the
#: due time it comes.
LEVELS: tuple[tuple[str, IncidentRole, int], ...] = (
    ("due", IncidentRole.incident_commander, 0),
    ("overdue", IncidentRole.communications_lead, 1),
    ("overdue_deputy", IncidentRole.deputy_commander, 2),
)
_ACTIVE = (Status.triage, Status.investigating, Status.contained, Status.recovering)


def due_at(incident: Incident, last: StatusUpdate | None, interval: timedelta) -> datetime | None:
    """When the next update to an audience is due: the last one's promise, or the
    interval after the incident opened; None when the last one promised none (resolved)."""
    if last is not None:
        return last.next_update_at
    return incident.created_at + interval


@dataclass(frozen=True)
class Due:
    """When the incident's next update to one audience is due, as its reminders count it."""

    audience: str
    interval: timedelta
    due_at: datetime | None
    snoozed_until: datetime | None
    last_update_id: int | None

    def left(self, now: datetime) -> timedelta | None:
        """The time until it is due; negative once overdue, None when none is due."""
        return self.due_at - now if self.due_at is not None else None


def schedule(
    session: Session,
    *,
    incident_id: int,
    principal: Principal,
    policy: AudiencePolicy,
    now: datetime | None = None,
) -> list[Due]:
    """The incident's cadence: for each audience with an interval at its severity, when the
    next update is due (what `tick` reminds of). Empty for an incident no longer reminded
    (resolved, closed), and without the public audiences of a restricted incident."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    if incident.status not in _ACTIVE:
        return []
    now = now or utcnow()
    heard = service.last_heard(session, incident_ids=[incident.id])
    found = []
    for name, audience in policy.audiences.items():
        interval = policy.cadence.interval(incident.severity.value, name)
        restricted = incident.visibility == Visibility.restricted
        if interval is None or (audience.public and restricted):
            continue
        last = heard.get((incident.id, name))
        held = service.active_snooze(session, incident_id=incident.id, audience=name, now=now)
        found.append(
            Due(
                audience=name,
                interval=interval,
                due_at=due_at(incident, last, interval),
                snoozed_until=held.until if held else None,
                last_update_id=last.id if last else None,
            )
        )
    return found


def _active_incidents(session: Session) -> list[Incident]:
    found: list[Incident] = []
    for status in _ACTIVE:
        cursor: str | None = None
        while True:
            rows, cursor = incidents.list_incidents(
                session, principal=CADENCE, limit=500, cursor=cursor, status=status.value
            )
            found.extend(rows)
            if cursor is None:
                break
    return found


def _recipients(session: Session, incident: Incident) -> dict[IncidentRole, str]:
    held = {
        r.role: r.assignee for r in list_roles(session, incident_id=incident.id, principal=CADENCE)
    }
    commander = held.get(IncidentRole.incident_commander) or incident.created_by
    return {role: held.get(role) or commander for _, role, _ in LEVELS}


def _fire(
    session: Session,
    incident: Incident,
    *,
    name: str,
    channels: tuple[str, ...],
    level: str,
    recipient: str,
    due: datetime,
    now: datetime,
) -> int:
    """Fire one reminder unless its key was fired before; answer 1 if it was fired now."""
    key = service.reminder_key(incident.id, name, due, level)
    if not service.record_reminder(
        session,
        key=key,
        incident_id=incident.id,
        audience=name,
        level=level,
        recipient=recipient,
        due_at=due,
        now=now,
    ):
        return 0
    incidents.record_entry(
        session,
        incident=incident,
        kind="update_reminder",
        actor=CADENCE,
        text=f"Status update to {name} {level.replace('_', ' ')} since "
        f"{due:%Y-%m-%d %H:%M} UTC: {recipient} reminded",
        data={"audience": name, "level": level, "recipient": recipient, "key": key},
    )
    pipeline.publish(
        session,
        pipeline.ReminderDue(
            incident_id=incident.id,
            audience=name,
            channels=channels,
            level=level,
            recipient=recipient,
            due_at=due,
            key=key,
            restricted=incident.visibility == Visibility.restricted,
        ),
    )
    return 1


def tick(session: Session, now: datetime, *, policy: AudiencePolicy) -> int:
    """Fire the reminders that have come by `now` and were not fired before; answer how many
    were fired. Each is a `ReminderDue` for the notifications and a timeline entry. `policy`:
    the audiences in force (`blastwall.wiring.periodic_jobs` binds it for the scheduler of
    `blastwall serve`, which calls the tick in its loop's transaction)."""
    active = _active_incidents(session)
    heard = service.last_heard(session, incident_ids=[i.id for i in active])
    fired = 0
    for incident in active:
        recipients: dict[IncidentRole, str] | None = None
        for name, audience in policy.audiences.items():
            interval = policy.cadence.interval(incident.severity.value, name)
            restricted = incident.visibility == Visibility.restricted
            if interval is None or (audience.public and restricted):
                continue
            due = due_at(incident, heard.get((incident.id, name)), interval)
            if due is None or due > now:
                continue
            if service.active_snooze(session, incident_id=incident.id, audience=name, now=now):
                continue
            recipients = recipients or _recipients(session, incident)
            for level, role, graces in LEVELS:
                if due + policy.cadence.grace * graces > now:
                    break
                fired += _fire(
                    session,
                    incident,
                    name=name,
                    channels=tuple(audience.channels),
                    level=level,
                    recipient=recipients[role],
                    due=due,
                    now=now,
                )
    return fired


def snooze(
    session: Session,
    *,
    incident_id: int,
    body: SnoozeIn,
    actor: Principal,
    policy: AudiencePolicy,
    now: datetime | None = None,
) -> CadenceSnooze:
    """Hold the incident's reminders to one audience until `body.until`, with the reason on
    the timeline."""
    actor.require(Permission.write_timeline)
    now = now or utcnow()
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    policy.audience(body.audience)
    if body.until <= now:
        raise InvalidInput(
            "A snooze must end in the future.",
            [Problem("body.until", "give a time after now, with its timezone")],
        )
    row = service.add_snooze(
        session,
        incident_id=incident.id,
        audience=body.audience,
        until=body.until,
        reason=body.reason,
        by=actor.name,
        now=now,
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="cadence_snoozed",
        actor=actor,
        text=f"Updates to {body.audience} snoozed until {body.until:%Y-%m-%d %H:%M} UTC: "
        f"{body.reason}",
        data={"audience": body.audience, "until": body.until.isoformat(), "reason": body.reason},
    )
    return row
