"""Status updates across domains: a draft filled from the incident itself (its timeline,
containment, tasks, and what the incident touched), previews and checks for an audience,
approval by a second person, and publishing: on the timeline, and to the pipeline
(`UpdatePublished`) for the notifications and the status page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Permission, Principal
from blastwall.comms.audiences import RESPONDERS, Audience, AudiencePolicy, RedactionClass
from blastwall.comms.flows.update_drafts import fill, inventory_names, open_hypotheses
from blastwall.comms.models.updates import StatusUpdate, UpdateState
from blastwall.comms.redaction import Names, Redactor
from blastwall.comms.service import updates as service
from blastwall.comms.update_schemas import SECTIONS, PreviewOut, ProblemOut, UpdateEdit
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, PermissionDenied, Problem
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.incidents.roles import list_roles
from blastwall.incidents.schemas import Visibility

__all__ = [
    "approve_update",
    "draft_update",
    "edit_update",
    "get_update",
    "list_updates",
    "may_publish",
    "no_change_update",
    "preview_update",
    "publish_update",
]


def _refuse_restricted(incident: Incident, name: str, audience: Audience) -> None:
    if audience.public and incident.visibility == Visibility.restricted:
        raise Conflict(
            f"Incident {incident.id} is restricted: nothing of it goes to the public "
            f"audience '{name}'. Publish to responders or executives instead."
        )


def _require_publisher(
    session: Session, incident: Incident, name: str, audience: Audience, actor: Principal
) -> None:
    if actor.role in audience.publishers.roles:
        return
    held = {
        r.role
        for r in list_roles(session, incident_id=incident.id, principal=actor)
        if r.assignee == actor.name
    }
    if held & set(audience.publishers.incident_roles):
        return
    who = [r.value for r in audience.publishers.roles]
    who += [f"the incident's {r.value}" for r in audience.publishers.incident_roles]
    raise PermissionDenied(
        f"You may not publish to the audience '{name}'. Those who may: {', '.join(who)}."
    )


def may_publish(
    session: Session, *, incident_id: int, audience: str, actor: Principal, policy: AudiencePolicy
) -> bool:
    """Whether `actor` may publish to (and approve updates to) `audience` on the incident:
    what publishing checks, asked beforehand so that an interface offers only what works."""
    incident = _incident(session, incident_id, actor)
    declared = policy.audience(audience)
    if not actor.can(Permission.write_timeline):
        return False
    if declared.public and incident.visibility == Visibility.restricted:
        return False
    try:
        _require_publisher(session, incident, audience, declared, actor)
    except PermissionDenied:
        return False
    return True


def _incident(session: Session, incident_id: int, actor: Principal) -> Incident:
    return incidents.get_incident(session, incident_id=incident_id, principal=actor)


def draft_update(
    session: Session,
    *,
    incident_id: int,
    audience: str,
    actor: Principal,
    policy: AudiencePolicy,
    now: datetime | None = None,
) -> StatusUpdate:
    """A draft to `audience` filled from the incident (`update_drafts.fill`)."""
    actor.require(Permission.write_timeline)
    incident = _incident(session, incident_id, actor)
    declared = policy.audience(audience)
    _refuse_restricted(incident, audience, declared)
    return fill(session, incident=incident, audience=audience, actor=actor, policy=policy, now=now)


def get_update(
    session: Session, *, incident_id: int, update_id: int, principal: Principal
) -> StatusUpdate:
    incident = _incident(session, incident_id, principal)
    return service.get_update(session, incident_id=incident.id, update_id=update_id)


def list_updates(
    session: Session,
    *,
    incident_id: int,
    principal: Principal,
    audience: str | None = None,
    state: str | None = None,
) -> list[StatusUpdate]:
    incident = _incident(session, incident_id, principal)
    return service.list_updates(session, incident_id=incident.id, audience=audience, state=state)


def edit_update(
    session: Session, *, incident_id: int, update_id: int, edit: UpdateEdit, actor: Principal
) -> StatusUpdate:
    actor.require(Permission.write_timeline)
    update = get_update(session, incident_id=incident_id, update_id=update_id, principal=actor)
    return service.edit_update(session, update=update, edit=edit, now=utcnow())


def _redactor(session: Session, audience: Audience) -> Redactor:
    hides = audience.hides()
    return Redactor(hides, inventory_names(session) if hides else Names())


def preview_update(
    session: Session,
    *,
    incident_id: int,
    update_id: int,
    principal: Principal,
    policy: AudiencePolicy,
    now: datetime | None = None,
) -> PreviewOut:
    """The audience's rendering beside the responders', and what blocks publishing."""
    incident = _incident(session, incident_id, principal)
    update = service.get_update(session, incident_id=incident.id, update_id=update_id)
    declared = policy.audience(update.audience)
    redactor = _redactor(session, declared)
    problems = service.check_update(
        update,
        audience=declared,
        redactor=redactor,
        open_hypotheses=open_hypotheses(session, incident=incident, principal=principal),
        now=now or utcnow(),
    )
    if declared.public and incident.visibility == Visibility.restricted:
        problems.insert(0, _restricted_problem(incident, update.audience))
    responders = policy.audiences.get(RESPONDERS, Audience(sees=list(RedactionClass)))
    return PreviewOut(
        update_id=update.id,
        audience=service.render(update, audience=update.audience, redactor=redactor),
        responders=service.render(
            update, audience=RESPONDERS, redactor=_redactor(session, responders)
        ),
        problems=[ProblemOut(field=p.location, message=p.message) for p in problems],
    )


def _restricted_problem(incident: Incident, audience: str) -> Problem:
    return Problem(
        "audience",
        f"incident {incident.id} is restricted: nothing of it goes to the public audience "
        f"'{audience}'",
    )


def _checked(
    session: Session,
    incident: Incident,
    update: StatusUpdate,
    declared: Audience,
    actor: Principal,
    now: datetime,
) -> Redactor:
    """The audience's redactor, once the update passes every check; InvalidInput listing
    each problem otherwise."""
    redactor = _redactor(session, declared)
    problems = service.check_update(
        update,
        audience=declared,
        redactor=redactor,
        open_hypotheses=open_hypotheses(session, incident=incident, principal=actor),
        now=now,
    )
    if problems:
        raise InvalidInput(
            f"Status update {update.id} cannot be published to '{update.audience}' yet; "
            f"fix these (`blastwall update edit {update.id}`) and publish again.",
            problems,
        )
    return redactor


def _ready(
    session: Session,
    *,
    incident_id: int,
    update_id: int,
    actor: Principal,
    policy: AudiencePolicy,
) -> tuple[Incident, StatusUpdate, Audience]:
    actor.require(Permission.write_timeline)
    incident = _incident(session, incident_id, actor)
    update = service.get_update(session, incident_id=incident.id, update_id=update_id)
    if update.state == UpdateState.published:
        raise Conflict(f"Status update {update.id} is published already; it cannot change.")
    declared = policy.audience(update.audience)
    _refuse_restricted(incident, update.audience, declared)
    _require_publisher(session, incident, update.audience, declared, actor)
    return incident, update, declared


def publish_update(
    session: Session,
    *,
    incident_id: int,
    update_id: int,
    actor: Principal,
    policy: AudiencePolicy,
    now: datetime | None = None,
) -> StatusUpdate:
    """Publish the update once it passes the checks. To an audience that needs a second
    person's approval, it waits for it (`awaiting_approval`) instead."""
    now = now or utcnow()
    incident, update, declared = _ready(
        session, incident_id=incident_id, update_id=update_id, actor=actor, policy=policy
    )
    redactor = _checked(session, incident, update, declared, actor, now)
    if not declared.approval:
        _publish(session, incident, update, declared, actor, redactor, policy, now)
        return update
    if update.state == UpdateState.awaiting_approval:
        raise Conflict(
            f"Status update {update.id} awaits approval already: another person who may "
            f"publish to '{update.audience}' runs `blastwall update approve {update.id}`."
        )
    update.state = UpdateState.awaiting_approval
    update.submitted_by = actor.name
    update.updated_at = now
    incidents.record_entry(
        session,
        incident=incident,
        kind="update_submitted",
        actor=actor,
        text=f"Status update {update.id} to {update.audience} awaits a second person's approval",
        data={"update_id": update.id, "audience": update.audience},
    )
    return update


def approve_update(
    session: Session,
    *,
    incident_id: int,
    update_id: int,
    actor: Principal,
    policy: AudiencePolicy,
    now: datetime | None = None,
) -> StatusUpdate:
    """Approve an update that awaits approval, which publishes it; the approver is a second
    person, neither its author nor who submitted it."""
    now = now or utcnow()
    incident, update, declared = _ready(
        session, incident_id=incident_id, update_id=update_id, actor=actor, policy=policy
    )
    if update.state != UpdateState.awaiting_approval:
        raise Conflict(
            f"Status update {update.id} is a draft: publish it first "
            f"(`blastwall update publish {update.id}`), then a second person approves it."
        )
    if actor.name in (update.author, update.submitted_by):
        raise PermissionDenied(
            f"Status update {update.id} needs a second person's approval: its author and "
            "whoever submitted it cannot approve it."
        )
    redactor = _checked(session, incident, update, declared, actor, now)
    update.approver = actor.name
    _publish(session, incident, update, declared, actor, redactor, policy, now)
    return update


def _publish(
    session: Session,
    incident: Incident,
    update: StatusUpdate,
    declared: Audience,
    actor: Principal,
    redactor: Redactor,
    policy: AudiencePolicy,
    now: datetime,
) -> None:
    """Mark the update published with its renderings, write it on the timeline, and hand it
    to the pipeline."""
    shown = service.render(update, audience=update.audience, redactor=redactor)
    inside = policy.audiences.get(RESPONDERS, Audience(sees=list(RedactionClass)))
    responders = service.render(update, audience=RESPONDERS, redactor=_redactor(session, inside))
    service.mark_published(
        update,
        by=actor.name,
        at=now,
        rendered={"audience": shown.model_dump(), "responders": responders.model_dump()},
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="update_published",
        actor=actor,
        text=f"Status update to {update.audience} published\n\n{responders.body}",
        data={
            "update_id": update.id,
            "audience": update.audience,
            "approver": update.approver,
            "no_change_of": update.no_change_of,
            "phase": update.phase.value,
            "impact": update.impact.value,
            "component_status": update.component_status.value,
            "next_update_at": update.next_update_at.isoformat() if update.next_update_at else None,
            "sections": responders.sections,
            "published": shown.model_dump(),
        },
    )
    systems = incidents.systems_of(session, incident_ids=[incident.id]).get(incident.id, [])
    pipeline.publish(
        session,
        pipeline.UpdatePublished(
            update_id=update.id,
            incident_id=incident.id,
            audience=update.audience,
            channels=tuple(declared.channels),
            public=declared.public,
            restricted=incident.visibility == Visibility.restricted,
            system_ids=tuple(systems),
            title=shown.title,
            body=shown.body,
            sections=shown.sections,
            phase=update.phase.value,
            impact=update.impact.value,
            component_status=update.component_status.value,
            published_at=now,
            published_by=actor.name,
            next_update_at=update.next_update_at,
        ),
    )


def no_change_update(
    session: Session,
    *,
    incident_id: int,
    audience: str,
    actor: Principal,
    policy: AudiencePolicy,
    next_update_at: datetime | None = None,
    now: datetime | None = None,
) -> StatusUpdate:
    """Publish the audience's last published update again with a new next update time
    (default: now plus the audience's cadence), keeping the cadence. Its content was checked
    and approved when first published, so it needs no second approval."""
    actor.require(Permission.write_timeline)
    now = now or utcnow()
    incident = _incident(session, incident_id, actor)
    declared = policy.audience(audience)
    _refuse_restricted(incident, audience, declared)
    _require_publisher(session, incident, audience, declared, actor)
    last = service.last_published(session, incident_id=incident.id, audience=audience)
    if last is None:
        raise Conflict(
            f"Incident {incident.id} has no published update to '{audience}' to repeat: "
            f"draft one (`blastwall update draft {incident.id} --audience {audience}`)."
        )
    interval = policy.cadence.interval(incident.severity.value, audience)
    when = next_update_at or (now + interval if interval else None)
    update = service.create_update(
        session,
        incident_id=incident.id,
        audience=audience,
        title=last.title,
        sections={name: service.items(getattr(last, name)) for name in SECTIONS},
        next_update_at=when,
        phase=last.phase,
        impact=last.impact,
        component_status=last.component_status,
        author=actor.name,
        now=now,
        no_change_of=last.id,
    )
    redactor = _checked(session, incident, update, declared, actor, now)
    _publish(session, incident, update, declared, actor, redactor, policy, now)
    return update
