"""The triage pack: what a responder opening an incident needs to see first.

Assembled from what is stored, in a handful of indexed queries: the recorded changes of the
involved systems in the 72 hours before the first signal, the signals by kind, the blast
radius through the inventory's shared components, similar past incidents (`similar.py`),
the playbook steps that apply, owners and on-call from the inventory, and the ATLAS and
OWASP entries the signals name.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal
from blastwall.correlation.models import Candidate, CandidateSystem
from blastwall.errors import NotFound
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident, TimelineEntry
from blastwall.inventory.models import Change, System, SystemComponent
from blastwall.inventory.schemas import SystemSpec
from blastwall.library import service as known
from blastwall.playbooks.library import Library, StepKind, select_steps
from blastwall.signals.models import Signal
from blastwall.taxonomy import taxonomy
from blastwall.triage.schemas import (
    Anomaly,
    BlastRadius,
    ChangeItem,
    Classification,
    Contact,
    ExternalIncident,
    GraphEdge,
    GraphNode,
    PlaybookStepOut,
    PlaybookSuggestion,
    RoleSuggestion,
    SimilarIncident,
    TriagePack,
)
from blastwall.triage.similar import index_for

__all__ = ["CHANGE_WINDOW", "figures", "triage_pack"]

CHANGE_WINDOW = timedelta(hours=72)
MAX_CHANGES = 50
MAX_ANOMALIES = 10
MAX_SIMILAR = 5
MAX_EXTERNAL = 3
MAX_SIGNALS_READ = 5000
_SEVERITY_RANK = {"info": 0, "warning": 1, "high": 2, "critical": 3}
_MITIGATION_KINDS = ("action", "decision", "containment_applied", "playbook_step")


def _signals(session: Session, incident_id: int) -> list[Signal]:
    candidates = select(Candidate.id).where(Candidate.incident_id == incident_id)
    query = (
        select(Signal)
        .where(Signal.candidate_id.in_(candidates))
        .order_by(Signal.id.desc())
        .limit(MAX_SIGNALS_READ)
    )
    return list(session.scalars(query))


def _systems(session: Session, incident: Incident, signals: list[Signal]) -> list[str]:
    ids = set(incidents.systems_of(session, incident_ids=[incident.id]).get(incident.id, []))
    ids |= {s.system_id for s in signals if s.system_id}
    candidates = select(Candidate.id).where(Candidate.incident_id == incident.id)
    named = session.scalars(
        select(CandidateSystem.system).where(CandidateSystem.candidate_id.in_(candidates))
    )
    known = set(session.scalars(select(System.id).where(System.id.in_(set(named)))))
    return sorted(ids | known)


def _changes(session: Session, systems: list[str], before: datetime) -> list[ChangeItem]:
    if not systems:
        return []
    query = (
        select(Change)
        .where(
            Change.system_id.in_(systems),
            Change.at >= before - CHANGE_WINDOW,
            Change.at <= before,
        )
        .order_by(Change.at.desc(), Change.id.desc())
        .limit(MAX_CHANGES)
    )
    return [
        ChangeItem(
            id=c.id,
            system_id=c.system_id,
            kind=c.kind,
            summary=c.summary,
            field=c.field,
            actor=c.actor,
            at=c.at,
        )
        for c in session.scalars(query)
    ]


def _anomalies(signals: list[Signal]) -> list[Anomaly]:
    by_kind: dict[tuple[str, str | None, str], list[Signal]] = defaultdict(list)
    for signal in signals:
        by_kind[signal.source, signal.detector, signal.kind].append(signal)
    found: list[Anomaly] = []
    for (source, detector, kind), group in by_kind.items():
        count = sum(int((s.attributes or {}).get("occurrences", 1)) for s in group)
        example = max(group, key=lambda s: (_SEVERITY_RANK.get(s.severity, 0), s.id))
        found.append(
            Anomaly(
                source=source,
                detector=detector,
                kind=kind,
                count=count,
                first_seen=min(s.starts_at or s.created_at for s in group),
                last_seen=max(s.created_at for s in group),
                severity=example.severity,
                example=example.summary,
                excerpt=example.excerpt,
            )
        )
    found.sort(key=lambda a: (-_SEVERITY_RANK.get(a.severity, 0), -a.count, a.kind))
    return found[:MAX_ANOMALIES]


def _components(session: Session, systems: list[str]) -> dict[str, set[tuple[str, str]]]:
    """Each system's components, for the involved systems and every system sharing one."""
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    if not systems:
        return out
    mine = session.execute(
        select(SystemComponent.system_id, SystemComponent.kind, SystemComponent.key).where(
            SystemComponent.system_id.in_(systems)
        )
    ).all()
    keys = {(kind, key) for _, kind, key in mine}
    for system_id, kind, key in mine:
        out[system_id].add((kind, key))
    if keys:
        shared = session.execute(
            select(SystemComponent.system_id, SystemComponent.kind, SystemComponent.key).where(
                SystemComponent.kind.in_({kind for kind, _ in keys}),
                SystemComponent.key.in_({key for _, key in keys}),
            )
        )
        for system_id, kind, key in shared:
            if (kind, key) in keys:
                out[system_id].add((kind, key))
    return out


def _blast_radius(systems: list[str], components: dict[str, set[tuple[str, str]]]) -> BlastRadius:
    mine = set().union(*(components.get(s, set()) for s in systems)) if systems else set()
    nodes = [GraphNode(id=f"system:{s}", kind="system", label=s, involved=True) for s in systems]
    edges: list[GraphEdge] = []
    exposed: set[str] = set()
    for kind, key in sorted(mine):
        holders = sorted(s for s, held in components.items() if (kind, key) in held)
        others = [s for s in holders if s not in systems]
        if kind == "model_provider" and not others:
            continue  # the provider is in the model's key already
        node = f"{kind}:{key}"
        nodes.append(GraphNode(id=node, kind=kind, label=key, involved=True))
        edges.extend(GraphEdge(source=f"system:{s}", target=node) for s in holders)
        exposed.update(others)
    nodes += [
        GraphNode(id=f"system:{s}", kind="system", label=s, involved=False) for s in sorted(exposed)
    ]
    return BlastRadius(systems=systems, exposed=sorted(exposed), nodes=nodes, edges=edges)


def _similar(
    session: Session,
    incident: Incident,
    text: str,
    systems: list[str],
    components: dict[str, set[tuple[str, str]]],
    principal: Principal,
) -> list[SimilarIncident]:
    ranked = index_for(session).search(
        text,
        systems=set(systems),
        components=components,
        exclude=incident.id,
        k=MAX_SIMILAR,
        archetype=incident.archetype,
    )
    if not ranked:
        return []
    top = ranked[: MAX_SIMILAR * 10]
    ids = [incident_id for incident_id, _, _ in top]
    visible = {
        row.id: row
        for row in session.scalars(
            select(Incident).where(Incident.id.in_(ids), incidents.visible_to(principal))
        )
    }
    chosen = [(i, score) for i, _, score in top if i in visible][:MAX_SIMILAR]
    systems_of = incidents.systems_of(session, incident_ids=[i for i, _ in chosen])
    mitigations: dict[int, list[str]] = defaultdict(list)
    if chosen:
        rows = session.execute(
            select(TimelineEntry.incident_id, TimelineEntry.text)
            .where(
                TimelineEntry.incident_id.in_([i for i, _ in chosen]),
                TimelineEntry.kind.in_(_MITIGATION_KINDS),
            )
            .order_by(TimelineEntry.id.desc())
        )
        for incident_id, entry in rows:
            if len(mitigations[incident_id]) < 5:
                mitigations[incident_id].append(entry)
    return [
        SimilarIncident(
            id=i,
            title=visible[i].title,
            archetype=visible[i].archetype,
            severity=visible[i].severity,
            status=visible[i].status,
            score=round(score, 3),
            shared_systems=sorted(set(systems_of.get(i, [])) & set(systems)),
            mitigations=mitigations.get(i, []),
        )
        for i, score in chosen
    ]


def _query(incident: Incident, signals: list[Signal]) -> str:
    return " ".join(
        [incident.title, incident.severity_reason or ""] + [s.summary for s in signals[:20]]
    )


def _external(session: Session, text: str, principal: Principal) -> list[ExternalIncident]:
    return [
        ExternalIncident(
            id=row.id,
            source=row.source,
            external_id=row.external_id,
            title=row.title,
            year=row.year,
            url=row.url,
            attribution=row.attribution,
            score=round(score, 3),
        )
        for row, score in known.search(session, text=text, principal=principal, limit=MAX_EXTERNAL)
    ]


def _playbook(
    incident: Incident, specs: dict[str, SystemSpec], library: Library
) -> PlaybookSuggestion | None:
    try:
        playbook = library.for_archetype(incident.archetype)
    except NotFound:  # no playbook for this archetype: the pack says so by leaving it out
        return None
    types = sorted({spec.type.value for spec in specs.values()})
    steps = []
    for step in select_steps(playbook, severity=incident.severity, system_types=types):
        supported: bool | None = None
        if step.kind is StepKind.containment and step.control is not None and specs:
            supported = all(step.control in s.controls for s in specs.values())
        steps.append(
            PlaybookStepOut(
                id=step.id,
                kind=step.kind.value,
                title=step.title,
                control=step.control.value if step.control else None,
                supported=supported,
                options=step.options,
                decided_by=step.decided_by.value if step.decided_by else None,
            )
        )
    return PlaybookSuggestion(id=playbook.id, name=playbook.name, steps=steps)


def _owners(specs: dict[str, SystemSpec]) -> tuple[list[Contact], list[RoleSuggestion]]:
    owners: list[Contact] = []
    roles: list[RoleSuggestion] = []
    for system_id, spec in specs.items():
        owner, on_call = spec.owner, spec.on_call
        owners.append(
            Contact(
                system_id=system_id,
                team=owner.team,
                contacts=[c.model_dump(exclude_none=True) for c in owner.contacts],
                on_call=on_call.model_dump(exclude_none=True) if on_call else None,
            )
        )
        if on_call and not any(r.role == "incident_commander" for r in roles):
            roles.append(
                RoleSuggestion(
                    role="incident_commander",
                    who=on_call.name,
                    why=f"on call for {system_id}",
                )
            )
        if owner.contacts and not any(r.role == "technical_lead" for r in roles):
            roles.append(
                RoleSuggestion(
                    role="technical_lead",
                    who=owner.contacts[0].name,
                    why=f"owner of {system_id} ({owner.team})",
                )
            )
    return owners, roles


def _classification(incident: Incident, signals: list[Signal]) -> list[Classification]:
    tables = taxonomy()
    counts: dict[str, int] = defaultdict(int)
    for signal in signals:
        for entry_id in [*(signal.atlas or []), *(signal.owasp or [])]:
            counts[entry_id] += 1
    for entry in tables.mapped(incident.archetype) if incident.archetype in tables else []:
        counts.setdefault(entry.id, 0)
    found = [
        Classification(
            id=i, framework=tables.entries[i].framework, name=tables.entries[i].name, signals=n
        )
        for i, n in counts.items()
        if i in tables
    ]
    found.sort(key=lambda c: (-c.signals, c.framework, c.id))
    return found


def _first_signal(session: Session, incident_id: int) -> datetime | None:
    return session.scalar(
        select(func.min(Candidate.first_signal_at)).where(Candidate.incident_id == incident_id)
    )


def figures(session: Session, *, incident: Incident) -> dict[str, Any]:
    """The parts of the incident's triage pack that follow from what is linked to it —
    signals, systems, first signal, changes before it, anomalies, exposed systems —
    computed again (a merge records them before and after)."""
    signals = _signals(session, incident.id)
    systems = _systems(session, incident, signals)
    first = _first_signal(session, incident.id)
    radius = _blast_radius(systems, _components(session, systems))
    return {
        "signals": len(signals),
        "systems": systems,
        "first_signal_at": first.isoformat() if first else None,
        "changes": len(_changes(session, systems, first or incident.created_at)),
        "anomalies": len(_anomalies(signals)),
        "exposed": radius.exposed,
    }


def triage_pack(
    session: Session, *, incident_id: int, principal: Principal, library: Library
) -> TriagePack:
    """The triage pack of an incident the principal may see."""
    started = time.perf_counter()
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    signals = _signals(session, incident.id)
    systems = _systems(session, incident, signals)
    first = _first_signal(session, incident.id)
    anchor = first or incident.created_at
    specs = {
        row.id: row.parsed
        for row in session.scalars(select(System).where(System.id.in_(systems)).order_by(System.id))
    }
    components = _components(session, systems)
    owners, roles = _owners(specs)
    text = _query(incident, signals)  # what similar incidents are searched by
    return TriagePack(
        incident_id=incident.id,
        title=incident.title,
        archetype=incident.archetype,
        severity=incident.severity,
        status=incident.status,
        first_signal_at=first,
        signals=len(signals),
        changes=_changes(session, systems, anchor),
        anomalies=_anomalies(signals),
        blast_radius=_blast_radius(systems, components),
        similar=_similar(session, incident, text, systems, components, principal),
        similar_external=_external(session, text, principal),
        playbook=_playbook(incident, specs, library),
        owners=owners,
        roles=roles,
        classification=_classification(incident, signals),
        assembled_ms=round((time.perf_counter() - started) * 1000, 1),
    )
