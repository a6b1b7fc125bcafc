"""Collecting evidence from other domains: the interactions behind signals and their trace
trees, configuration snapshots, uploaded files, reproduction attempts and hunt results.

Collection adds items and ledger records in the caller's transaction and writes one
timeline entry per batch."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment.service import control_state
from blastwall.errors import Conflict, InvalidInput, Problem
from blastwall.evidence import service
from blastwall.evidence.hunt import get_hunt
from blastwall.evidence.models import EvidenceItem, HuntMatch
from blastwall.evidence.schemas import ReproductionIn
from blastwall.evidence.store import Vault
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident, IncidentSystem
from blastwall.inventory.models import Change, System
from blastwall.signals.models import Signal
from blastwall.telemetry.models import Interaction
from blastwall.telemetry.service import trace_spans

JSON_MEDIA = "application/json"


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


def _columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def _summarise(items: list[EvidenceItem]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.kind] = counts.get(item.kind, 0) + 1
    return ", ".join(f"{n} {k.replace('_', ' ')}{'s' if n > 1 else ''}" for k, n in counts.items())


def _collect_interactions(
    session: Session,
    incident: Incident,
    interaction_ids: list[int],
    actor: Principal,
    why: str,
    vault: Vault,
) -> list[EvidenceItem]:
    items: list[EvidenceItem] = []
    wanted = sorted(set(interaction_ids))
    if not wanted:
        return items
    rows = list(
        session.scalars(
            select(Interaction).where(Interaction.id.in_(wanted)).order_by(Interaction.id)
        )
    )
    traces: list[str] = []
    for row in rows:
        source = service.interaction_source(row.id)
        if row.trace_id not in traces:
            traces.append(row.trace_id)
        if service.has_source(session, incident_id=incident.id, kind="interaction", source=source):
            continue
        items.append(
            service.store_item(
                session,
                vault=vault,
                incident=incident,
                kind="interaction",
                data=_json(_columns(row)),
                media_type=JSON_MEDIA,
                name=f"interaction-{row.id}.json",
                source=source,
                actor=actor,
                note=why,
            )
        )
    for trace_id in traces:
        source = f"trace:{trace_id}"
        if service.has_source(session, incident_id=incident.id, kind="trace_tree", source=source):
            continue
        spans, context = trace_spans(session, trace_id=trace_id)
        tree = {
            "trace_id": trace_id,
            "interactions": [_columns(s) for s in spans],
            "context_spans": [_columns(s) for s in context],
        }
        items.append(
            service.store_item(
                session,
                vault=vault,
                incident=incident,
                kind="trace_tree",
                data=_json(tree),
                media_type=JSON_MEDIA,
                name=f"trace-{trace_id}.json",
                source=source,
                actor=actor,
                note=why,
            )
        )
    return items


def collect_for_incident(
    session: Session,
    *,
    incident_id: int,
    actor: Principal,
    vault: Vault,
    signal_ids: list[int] | None = None,
    interaction_ids: list[int] | None = None,
    why: str = "named directly",
    timeline: bool = True,
) -> list[EvidenceItem]:
    """Preserve the interactions behind the given signals (and any interactions named
    directly, `why` saying where they come from), with the trace tree of each, as evidence
    of the incident. Items already collected for the incident are not collected twice.
    `timeline=False` writes no timeline entry (the ledger still records each item): for the
    repeats of a signal, which would flood the timeline. Does not commit."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return []
    ids = list(interaction_ids or [])
    if signal_ids:
        signals = session.scalars(select(Signal).where(Signal.id.in_(signal_ids)))
        for signal in signals:
            ids.extend(i for i in (signal.interaction_ids or []) if isinstance(i, int))
        why = "behind signal(s) " + ", ".join(str(s) for s in sorted(set(signal_ids)))
    items = _collect_interactions(session, incident, ids, actor, why, vault)
    if items and timeline:
        incidents.record_entry(
            session,
            incident=incident,
            kind="evidence_collected",
            actor=actor,
            text=f"Evidence collected ({why}): {_summarise(items)}",
            data={"items": [i.id for i in items]},
        )
    return items


def collect(
    session: Session,
    *,
    incident_id: int,
    actor: Principal,
    vault: Vault,
    signal_ids: list[int] | None = None,
    interaction_ids: list[int] | None = None,
) -> list[EvidenceItem]:
    """`collect_for_incident` for a person asking for it: checks rights and that every
    signal and interaction named exists, then commits."""
    actor.require(Permission.write_incidents)
    incident = service.incident_for(session, incident_id=incident_id, principal=actor)
    problems: list[Problem] = []
    for field, model, wanted in (
        ("signals", Signal, signal_ids),
        ("interactions", Interaction, interaction_ids),
    ):
        if wanted:
            found = set(session.scalars(select(model.id).where(model.id.in_(set(wanted)))))
            if missing := sorted(set(wanted) - found):
                problems.append(Problem(field, f"none with the id(s) {missing}"))
    if problems:
        raise InvalidInput(
            "Some of what was named to collect does not exist; nothing was collected.",
            problems,
        )
    items = collect_for_incident(
        session,
        incident_id=incident.id,
        actor=actor,
        vault=vault,
        signal_ids=signal_ids,
        interaction_ids=interaction_ids,
    )
    session.flush()
    return items


def _keep(
    session: Session,
    incident: Incident,
    *,
    kind: str,
    data: bytes,
    name: str,
    source: str,
    actor: Principal,
    vault: Vault,
    text: str,
    media_type: str = JSON_MEDIA,
    note: str = "",
    extra: dict[str, Any] | None = None,
) -> EvidenceItem:
    """Store one item a person brought or asked for, say so on the timeline, commit."""
    item = service.store_item(
        session,
        vault=vault,
        incident=incident,
        kind=kind,
        data=data,
        media_type=media_type,
        name=name,
        source=source,
        actor=actor,
        note=note,
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="evidence_collected",
        actor=actor,
        text=text,
        data={"items": [item.id], **(extra or {})},
    )
    session.flush()
    return item


def snapshot_config(
    session: Session, *, incident_id: int, actor: Principal, vault: Vault, note: str = ""
) -> EvidenceItem:
    """Preserve the inventory declaration of the incident's systems, their last changes and
    the controls in force on them."""

    actor.require(Permission.write_incidents)
    incident = service.incident_for(session, incident_id=incident_id, principal=actor)
    system_ids = list(
        session.scalars(
            select(IncidentSystem.system_id).where(IncidentSystem.incident_id == incident.id)
        )
    )
    systems = list(
        session.scalars(select(System).where(System.id.in_(system_ids)).order_by(System.id))
    )
    changes = list(
        session.scalars(
            select(Change)
            .where(Change.system_id.in_(system_ids))
            .order_by(Change.id.desc())
            .limit(200)
        )
    )
    snapshot = {
        "incident": incident.id,
        "systems": [_columns(s) for s in systems],
        "recent_changes": [_columns(c) for c in changes],
        "controls": {
            s.id: control_state(session, system_id=s.id, full=True).model_dump(mode="json")
            for s in systems
        },
    }
    return _keep(
        session,
        incident,
        vault=vault,
        kind="config_snapshot",
        data=_json(snapshot),
        name="config-snapshot.json",
        source="inventory:" + ",".join(system_ids),
        actor=actor,
        note=note,
        text=f"Configuration snapshot of {', '.join(system_ids) or 'no systems'} preserved",
    )


def add_file(
    session: Session,
    *,
    incident_id: int,
    data: bytes,
    name: str,
    media_type: str,
    note: str,
    actor: Principal,
    vault: Vault,
    permission: Permission = Permission.write_incidents,
) -> EvidenceItem:
    """Preserve a file a responder brings (a screenshot, an e-mail, a log). `permission`:
    what the actor must hold (legal files a regulator's report under `decide_obligations`)."""
    actor.require(permission)
    incident = service.incident_for(session, incident_id=incident_id, principal=actor)
    return _keep(
        session,
        incident,
        vault=vault,
        kind="file",
        data=data,
        media_type=media_type,
        name=name,
        source=f"upload:{name}",
        actor=actor,
        note=note,
        text=f"File {name} added as evidence" + (f": {note}" if note else ""),
    )


def add_reproduction(
    session: Session, *, incident_id: int, attempt: ReproductionIn, actor: Principal, vault: Vault
) -> EvidenceItem:
    """Preserve a reproduction attempt: input, environment, model version, result, and
    whether the result differed from what was seen."""
    actor.require(Permission.write_incidents)
    incident = service.incident_for(session, incident_id=incident_id, principal=actor)
    verdict = "differed" if attempt.differed else "matched"
    return _keep(
        session,
        incident,
        vault=vault,
        kind="reproduction",
        data=_json(attempt.model_dump(mode="json")),
        name="reproduction.json",
        source="reproduction",
        actor=actor,
        note=attempt.note,
        text=f"Reproduction attempt on {attempt.model_version or 'unknown model'}: {verdict}",
        extra={"differed": attempt.differed},
    )


def attach_hunt(
    session: Session, *, hunt_id: int, incident_id: int, actor: Principal, vault: Vault
) -> tuple[list[EvidenceItem], list[str], list[str]]:
    """Attach a finished hunt to an incident: the matched interactions (and their trace
    trees) become evidence, the hunt's result is kept as an item of its own, and the
    affected conversations and users are written on the timeline."""
    actor.require(Permission.write_incidents)
    hunt = get_hunt(session, hunt_id=hunt_id, principal=actor)
    if hunt.state != "done":
        raise Conflict(f"Hunt {hunt.id} is {hunt.state}; attach it once it is done.")
    incident = service.incident_for(session, incident_id=incident_id, principal=actor)
    matches = list(
        session.scalars(
            select(HuntMatch).where(HuntMatch.hunt_id == hunt.id).order_by(HuntMatch.id)
        )
    )
    result = {
        "hunt": {
            "id": hunt.id,
            "mode": hunt.mode,
            "query": hunt.query,
            "system": hunt.system_id,
            "since": hunt.since.isoformat() if hunt.since else None,
            "method": hunt.method,
            "scanned": hunt.scanned,
            "matches": hunt.match_count,
            "by": hunt.created_by,
            "finished_at": hunt.finished_at.isoformat() if hunt.finished_at else None,
        },
        "summary": hunt.summary,
        "matches": [
            {
                "interaction": m.interaction_id,
                "field": m.field,
                "trace": m.trace_id,
                "conversation": m.conversation_id,
                "user": m.user_id,
                "system": m.system_id,
                "tool": m.tool_name,
                "at": m.at.isoformat(),
            }
            for m in matches
        ],
    }
    items = [
        service.store_item(
            session,
            vault=vault,
            incident=incident,
            kind="hunt_result",
            data=_json(result),
            media_type=JSON_MEDIA,
            name=f"hunt-{hunt.id}.json",
            source=f"hunt:{hunt.id}",
            actor=actor,
            note=f"{hunt.mode} hunt: {hunt.query}",
        )
    ]
    why = f"found by hunt {hunt.id}"
    items += _collect_interactions(
        session, incident, [m.interaction_id for m in matches], actor, why, vault
    )
    conversations = sorted({m.conversation_id for m in matches if m.conversation_id})
    users = sorted({m.user_id for m in matches if m.user_id})
    incidents.record_entry(
        session,
        incident=incident,
        kind="hunt_attached",
        actor=actor,
        text=f"Hunt {hunt.id} ({hunt.mode} {hunt.query!r}) attached: {len(matches)} "
        f"interactions, {len(conversations)} conversations, {len(users)} users affected",
        data={
            "hunt": hunt.id,
            "items": [i.id for i in items],
            "affected_conversations": conversations[:1000],
            "affected_users": users[:1000],
        },
    )
    session.flush()
    return items, conversations, users
