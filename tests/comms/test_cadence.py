"""The cadence of status updates with a controllable clock: reminders to the commander, the
communications lead and the deputy as an update is due and overdue, each fired once (a new
process included), "no change" and snoozes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from blastwall import pipeline
from blastwall.auth.roles import Principal, Role
from blastwall.comms.audiences import AudiencePolicy, load_audiences
from blastwall.comms.flows import cadence, updates
from blastwall.comms.models.updates import UpdateReminder
from blastwall.comms.update_schemas import SnoozeIn, UpdateEdit
from blastwall.db import Database
from blastwall.incidents import roles, service
from blastwall.incidents.schemas import (
    Archetype,
    IncidentCreate,
    IncidentRole,
    RoleAssign,
    Severity,
    Visibility,
)
from blastwall.incidents.timeline import list_timeline
from blastwall.pipeline import ReminderDue
from blastwall.settings import Settings
from blastwall.wiring import install

ADMIN = Principal(name="cli:admin", role=Role.admin)
CADENCE = """
cadence:
  grace: 15m
  severities:
    SEV1: {responders: 30m, executives: 60m, customers: 60m}
"""


def _policy(tmp_path: Path) -> AudiencePolicy:
    path = tmp_path / "audiences.yaml"
    path.write_text(CADENCE, encoding="utf-8")
    return load_audiences(path)


def _open(db: Database, *, restricted: bool = False) -> tuple[int, datetime]:
    data = IncidentCreate(
        title="Support chatbot leaks order details",
        archetype=Archetype.data_exfiltration,
        severity=Severity.SEV1,
        visibility=Visibility.restricted if restricted else Visibility.open,
    )
    with db.transaction() as session:
        incident = service.create_incident(session, data=data, actor=ADMIN)
        for role, who in (
            (IncidentRole.incident_commander, "cli:cmdr"),
            (IncidentRole.communications_lead, "cli:comms"),
            (IncidentRole.deputy_commander, "cli:deputy"),
        ):
            assignment = RoleAssign(role=role, assignee=who)
            roles.assign_role(session, incident_id=incident.id, assignment=assignment, actor=ADMIN)
        return incident.id, incident.created_at


def _listen() -> list[ReminderDue]:
    seen: list[ReminderDue] = []
    pipeline.subscribe(ReminderDue, lambda _session, event: seen.append(event))
    return seen


def test_reminders_come_on_the_cadence_and_each_once(db: Database, tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    incident_id, opened = _open(db)
    seen = _listen()

    def tick(minutes: int) -> list[tuple[str, str, str]]:
        before = len(seen)
        with db.transaction() as session:
            fired = cadence.tick(session, opened + timedelta(minutes=minutes), policy=policy)
        assert fired == len(seen) - before
        return [(e.audience, e.level, e.recipient) for e in seen[before:]]

    assert tick(29) == []
    assert tick(31) == [("responders", "due", "cli:cmdr")]
    assert tick(31) == []
    assert tick(46) == [("responders", "overdue", "cli:comms")]
    assert sorted(tick(61)) == [
        ("customers", "due", "cli:cmdr"),
        ("executives", "due", "cli:cmdr"),
        ("responders", "overdue_deputy", "cli:deputy"),
    ]
    first = seen[0]
    assert first.due_at == opened + timedelta(minutes=30)
    assert first.channels == ("responders",) and not first.restricted
    assert first.key.startswith(f"update-reminder:{incident_id}:responders:")

    # A new process (the server restarted) ticks at the same moment: nothing twice.
    pipeline.reset()
    install(Settings())
    seen = _listen()
    assert tick(61) == []
    with db.transaction() as session:
        keys = session.query(UpdateReminder.key).count()
    assert keys == 5

    # An update promises the next one: the cadence counts from its promise.
    at = opened + timedelta(minutes=62)
    with db.transaction() as session:
        draft = updates.draft_update(
            session, incident_id=incident_id, audience="responders", actor=ADMIN, policy=policy
        )
        promise = UpdateEdit(next_update_at=opened + timedelta(minutes=120))
        updates.edit_update(
            session, incident_id=incident_id, update_id=draft.id, edit=promise, actor=ADMIN
        )
        updates.publish_update(
            session,
            incident_id=incident_id,
            update_id=draft.id,
            actor=ADMIN,
            policy=policy,
            now=at,
        )
    assert ("responders", "due", "cli:cmdr") not in tick(110)

    with db.transaction() as session:
        cadence.snooze(
            session,
            incident_id=incident_id,
            body=SnoozeIn(
                audience="responders",
                until=opened + timedelta(minutes=200),
                reason="waiting for the vendor's answer",
            ),
            actor=ADMIN,
            policy=policy,
            now=opened + timedelta(minutes=115),
        )
    assert [a for a in tick(130) if a[0] == "responders"] == []
    assert tick(201) == [
        ("responders", "due", "cli:cmdr"),
        ("responders", "overdue", "cli:comms"),
        ("responders", "overdue_deputy", "cli:deputy"),
    ]
    with db.transaction() as session:
        entries, _, _ = list_timeline(session, incident_id=incident_id, principal=ADMIN, limit=500)
    reminded = [e for e in entries if e.kind == "update_reminder"]
    assert len(reminded) == 12  # each reminder fired, once
    assert reminded[0].text.startswith("Status update to responders due since")
    snoozed = next(e for e in entries if e.kind == "cadence_snoozed")
    assert "waiting for the vendor's answer" in snoozed.text

    # "No change" keeps the cadence with the last state.
    with db.transaction() as session:
        again = updates.no_change_update(
            session,
            incident_id=incident_id,
            audience="responders",
            actor=ADMIN,
            policy=policy,
            now=opened + timedelta(minutes=202),
        )
        assert again.no_change_of == draft.id
        assert again.next_update_at == opened + timedelta(minutes=232)


def test_a_restricted_incident_reminds_no_public_audience(db: Database, tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    _, opened = _open(db, restricted=True)
    seen = _listen()
    with db.transaction() as session:
        cadence.tick(session, opened + timedelta(minutes=61), policy=policy)
    assert {e.audience for e in seen} == {"responders", "executives"}
    assert all(e.restricted for e in seen)
