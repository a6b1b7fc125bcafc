"""Merging one incident into another: everything linked to the merged incident moves to
the survivor.

Merging moves: the candidates (and with them the signal groups and signals, and the later
signals that match them), the kept evidence items (each move a pair of ledger records:
`moved` under the merged incident, `collected` under the survivor, so the chain of
custody shows it and both incidents' bundles verify), a legal hold, the systems and the
participants. Containment actions, snapshots, quarantined outputs, roles, tasks and
checklists stay with the incident they were made under; the survivor's timeline names
them. Both timelines say what moved, with counts, and the survivor's triage figures are
computed again and recorded, before and after.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal
from blastwall.containment.models import ContainmentAction, ControlSnapshot, QuarantinedOutput
from blastwall.correlation import service as correlation
from blastwall.evidence import custody
from blastwall.evidence import service as evidence
from blastwall.incidents import service
from blastwall.incidents.models import Incident
from blastwall.triage.service import figures

__all__ = ["merge"]


def _ids(values: list[int]) -> str:
    return ", ".join(str(v) for v in values) or "none"


def _merge_systems(
    session: Session, *, incident: Incident, target: Incident, actor: Principal
) -> list[str]:
    """The merged incident's systems join the survivor's; answers those added."""
    systems = service.systems_of(session, incident_ids=[incident.id, target.id])
    had = systems.get(target.id, [])
    added_systems = service.link_systems(
        session, incident=target, system_ids=systems.get(incident.id, [])
    )
    if added_systems:
        service.record_entry(
            session,
            incident=target,
            kind="field_changed",
            actor=actor,
            text=f"systems: {', '.join(had) or 'none'} → "
            f"{', '.join(sorted([*had, *added_systems]))} (from incident {incident.id})",
            data={"field": "systems", "before": had, "after": sorted([*had, *added_systems])},
        )
    return added_systems


def _staying(session: Session, incident: Incident) -> tuple[list[Any], list[int], int]:
    """What stays with the merged incident: its containment actions (id, state), its
    snapshots and how many quarantined outputs."""
    actions = list(
        session.execute(
            select(ContainmentAction.id, ContainmentAction.state)
            .where(ContainmentAction.incident_id == incident.id)
            .order_by(ContainmentAction.id)
        )
    )
    snapshots = list(
        session.scalars(
            select(ControlSnapshot.id)
            .where(ControlSnapshot.incident_id == incident.id)
            .order_by(ControlSnapshot.id)
        )
    )
    quarantined = int(
        session.scalar(
            select(func.count(QuarantinedOutput.id)).where(
                QuarantinedOutput.incident_id == incident.id
            )
        )
        or 0
    )
    return actions, snapshots, quarantined


def _record_figures(
    session: Session,
    *,
    incident: Incident,
    target: Incident,
    actor: Principal,
    before: dict[str, Any],
) -> None:
    """The survivor's triage figures computed again, before and after on its timeline."""
    after = figures(session, incident=target)
    service.record_entry(
        session,
        incident=target,
        kind="triage_recomputed",
        actor=actor,
        text=f"Triage figures after the merge of incident {incident.id}: signals "
        f"{before['signals']} → {after['signals']}, systems "
        f"{', '.join(before['systems']) or 'none'} → "
        f"{', '.join(after['systems']) or 'none'}, first signal "
        f"{before['first_signal_at'] or 'none'} → "
        f"{after['first_signal_at'] or 'none'}",
        data={"before": before, "after": after},
    )


def merge(session: Session, *, incident: Incident, target: Incident, actor: Principal) -> None:
    """Move what is linked to `incident` (merged) to `target` (the survivor), and say so on
    both timelines (the caller commits)."""
    reason = f"incident {incident.id} merged into incident {target.id}"
    session.flush()
    figures_before = figures(session, incident=target)
    added_systems = _merge_systems(session, incident=incident, target=target, actor=actor)
    added_people = service.add_participants(
        session,
        incident=target,
        names=service.participants_of(session, incident_id=incident.id),
        actor=actor,
        why=f" (from incident {incident.id})",
    )
    candidates, signals = correlation.move_candidates(
        session, from_incident=incident.id, to_incident=target.id
    )
    if target.status in service.ENDED:
        correlation.resolve_groups(session, incident_id=target.id, at=target.updated_at)
    items = evidence.move_items(session, source=incident, target=target, actor=actor, reason=reason)
    hold = custody.carry_hold(session, source=incident, target=target, actor=actor)
    actions, snapshots, quarantined = _staying(session, incident)
    in_force = [a for a, state in actions if state == "active"]
    moved: dict[str, Any] = {
        "from": incident.id,
        "into": target.id,
        "candidates": candidates,
        "signals": signals,
        "evidence_items": [i.id for i in items],
        "legal_hold_carried": hold is not None,
        "systems_added": added_systems,
        "participants_added": added_people,
        "containment_actions": [a for a, _ in actions],
        "controls_in_force": in_force,
        "snapshots": snapshots,
        "quarantined_outputs": quarantined,
    }
    summary = (
        f"{len(candidates)} candidate(s) with {signals} signal(s), {len(items)} evidence "
        f"item(s){' under legal hold' if hold is not None else ''}, "
        f"{len(added_systems)} system(s), {len(added_people)} participant(s)"
    )
    stays = (
        f"containment actions {_ids([a for a, _ in actions])} "
        f"({len(in_force)} in force), snapshots {_ids(snapshots)} and {quarantined} "
        f"quarantined output(s) stay with incident {incident.id}"
    )
    if incident.detected_at < target.detected_at:
        # The problem was detected when the first of the two was.
        moved["detected"] = {
            "before": target.detected_at.isoformat(),
            "after": incident.detected_at.isoformat(),
        }
        target.detected_at = incident.detected_at
        stays += f"; detected at {incident.detected_at.isoformat()}, as incident {incident.id} was"
    service.record_entry(
        session,
        incident=target,
        kind="merged_in",
        actor=actor,
        text=f"Incident {incident.id} merged into this one by {actor.name}: moved here "
        f"{summary}; {stays}",
        data=moved,
    )
    service.record_entry(
        session,
        incident=incident,
        kind="merged_out",
        actor=actor,
        text=f"Merged into incident {target.id} by {actor.name}: moved there {summary}; {stays}",
        data=moved,
    )
    _record_figures(session, incident=incident, target=target, actor=actor, before=figures_before)
