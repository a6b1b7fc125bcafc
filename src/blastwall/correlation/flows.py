"""Correlation as signals arrive: each signal joins its group and its candidate in the
transaction that stores it, so a committed signal already has both. No batch loop.

    signal ─► fingerprint ─► group (count, last seen; a recurrence opens a linked group)
                               │
              held back? ◄─────┤  maintenance window, snooze
                               ▼
          candidate of an earlier signal of the same trace or conversation, or of
          the group, or of an inhibiting outage, or of the key (system + archetype,
          shared component, reported conversation or system)
                               ▼
          severity policy (evidence first; the inventory raises what shows impact)
                               ▼
          at or above the threshold: an incident opens at once; below it, still growing
          after the policy's time: escalated to the triage owner (recorded and logged)

A signal joined by trace or conversation may carry another archetype: the strongest signal
(the one the policy rates gravest alone) gives the candidate its archetype, and an open
incident may be raised. What each signal shows (reports, success, leaks, confidence) is
kept on the candidate by `evidence.py` for the policy's evidence factors. Triage by people
(accept, decline, merge) and escalation are in `triage.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Principal, Role
from blastwall.correlation import evidence, links, matching, service, triage
from blastwall.correlation.models import Candidate, NoiseRule, SignalGroup
from blastwall.correlation.policy import Inhibition, Policy, policy_in_force
from blastwall.correlation.schemas import (
    Accept,
    CandidateStatus,
)
from blastwall.correlation.service import SystemFacts
from blastwall.correlation.severity import Assessment, assess, at_or_above, signal_rank
from blastwall.db import utcnow
from blastwall.evidence.models import EvidenceItem
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.pipeline import EvidenceWanted, SignalsRaised, SignalsResolved
from blastwall.signals.models import Signal

log = logging.getLogger("blastwall.correlation")
CORRELATOR = Principal(name="blastwall:correlation", role=Role.admin)
MAX_TRACKED = 1000  # conversations and users remembered per candidate
WAITING = frozenset({CandidateStatus.pending, CandidateStatus.declined})

__all__ = [
    "CORRELATOR",
    "correlate",
    "policy_in_force",
    "resolve",
    "signals_raised",
    "signals_resolved",
]


def correlate(
    session: Session,
    signals: Sequence[Signal],
    *,
    now: datetime | None = None,
    policy: Policy | None = None,
    evidence_cap: int = 0,
) -> None:
    """Give each new signal its group and, where one applies, its candidate, in the
    caller's transaction. Signals that have a group already are left as they are.
    `evidence_cap`: the interactions a group's repeats add to an incident's evidence, at
    most (the setting `evidence_repeat_cap`, which `blastwall.wiring` passes)."""
    todo = [s for s in signals if s.group_id is None]
    if not todo:
        return
    session.flush()
    run = _Run(session, policy or policy_in_force(), now or utcnow(), evidence_cap)
    prints = [matching.fingerprint(run.policy, s) for s in todo]
    keys = [run.key(s) for s in todo]
    shared = [f"{by}:{value}" for s in todo for by, value in links.shared_ids(s)]
    service.lock(session, prints + [k[0] for k in keys] + shared)
    for signal, fingerprint, key in zip(todo, prints, keys, strict=True):
        run.one(signal, fingerprint, key)
    session.flush()


def signals_raised(session: Session, event: SignalsRaised, *, evidence_cap: int) -> None:
    """The pipeline's correlation step: correlate the signals just stored."""
    policy = event.policy if isinstance(event.policy, Policy) else None
    correlate(session, event.signals, now=event.now, policy=policy, evidence_cap=evidence_cap)


def signals_resolved(session: Session, event: SignalsResolved) -> None:
    """The pipeline's step for signals that stopped firing."""
    resolve(session, event.signals, now=event.now)


def resolve(session: Session, signals: Sequence[Signal], *, now: datetime | None = None) -> None:
    """Mark the groups of resolved signals (an alert's resolution) resolved: after the
    policy's quiet period they take no more signals; a return opens a linked group. The
    quiet period counts from when Blastwall learned of the resolution, like every other
    correlation time (the sender's clock is not trusted)."""
    now = now or utcnow()
    for signal in signals:
        if signal.group_id is None:
            continue
        group = session.get(SignalGroup, signal.group_id)
        if group is not None and group.resolved_at is None:
            group.resolved_at = now


Key = tuple[str, str, str | None]  # candidate key, basis, component


class _Run:
    """One correlation call: the policy, the time, and what it looked up once."""

    def __init__(
        self, session: Session, policy: Policy, now: datetime, evidence_cap: int = 0
    ) -> None:
        self.session = session
        self.policy = policy
        self.now = now
        self.window = policy.grouping.window
        self.evidence_cap = evidence_cap
        self._rules: list[NoiseRule] | None = None
        self._incidents: dict[int, Incident | None] = {}
        service.INVENTORY.refresh(session)

    # -- lookups --------------------------------------------------------------------------

    def facts(self, system: str | None) -> SystemFacts | None:
        return service.INVENTORY.get(self.session, system) if system else None

    def components(self, system: str | None) -> frozenset[tuple[str, str]]:
        facts = self.facts(system)
        return facts.components if facts else frozenset()

    def rules(self) -> list[NoiseRule]:
        if self._rules is None:
            self._rules = service.active_rules(self.session, now=self.now)
        return self._rules

    def incident_of(self, candidate: Candidate) -> Incident | None:
        if candidate.incident_id is None:
            return None
        if candidate.incident_id not in self._incidents:
            self._incidents[candidate.incident_id] = incidents.active_incident(
                self.session, incident_id=candidate.incident_id
            )
        return self._incidents[candidate.incident_id]

    def live(self, candidate: Candidate | None) -> Candidate | None:
        """The candidate, while it still takes signals: waiting and active within the window,
        or carried on by an incident that is not over."""
        if candidate is None:
            return None
        if candidate.status in WAITING:
            return candidate if candidate.last_signal_at >= self.now - self.window else None
        return candidate if self.incident_of(candidate) is not None else None

    def depends_on(self, system: str) -> list[str]:
        facts = self.facts(system)
        return list(facts.spec.depends_on) if facts else []

    def rate(self, signal: Signal) -> Assessment:
        """The severity the policy gives the signal alone, on its own system."""
        facts = self.facts(signal.system_id)
        impact = evidence.impact(
            [facts] if facts else [],
            evidence.observe({}, signal, self.policy.severity),
            top_signal_severity=signal.severity,
            affected=links.affected(signal),
            systems=int(matching.system_of(signal) is not None),
            ongoing=True,
            signals=1,
            first=self.now,
            now=self.now,
        )
        return assess(self.policy.severity, impact)

    def baseline(self, signal: Signal) -> float:
        """The signal's system's usual rate of signals of its archetype, per hour (0 for a
        system outside the inventory, or a policy without the volume factor)."""
        volume = self.policy.severity.factors.volume
        if volume is None or signal.system_id is None:
            return 0.0
        count = service.baseline_count(
            self.session,
            system=signal.system_id,
            archetype=signal.archetype,
            since=self.now - volume.baseline_window,
            until=self.now,
        )
        return count / (volume.baseline_window.total_seconds() / 3600)

    # -- the steps ------------------------------------------------------------------------

    def key(self, signal: Signal) -> Key:
        system = matching.system_of(signal)
        archetype = signal.archetype or f"kind={signal.kind}"
        if signal.source == "report":
            return f"report:{system or '-'}", "report", None
        component = matching.named_component(self.policy, signal, self.components(signal.system_id))
        if component is not None:
            kind, name = component
            return f"component:{kind}:{name}"[:300], "component", f"{kind}:{name}"
        return f"system:{system or '-'}:{archetype}"[:300], "system", None

    def group(self, signal: Signal, fingerprint: str) -> SignalGroup:
        group = service.latest_group(self.session, fingerprint=fingerprint)
        if group is not None:
            ended = group.resolved_at
            candidate = (
                self.session.get(Candidate, group.candidate_id) if group.candidate_id else None
            )
            if ended is None and candidate is not None and candidate.incident_id is not None:
                incident = self.session.get(Incident, candidate.incident_id)
                if incident is not None and incident.status in incidents.ENDED:
                    ended = incident.resolved_at or incident.closed_at or incident.updated_at
            if ended is not None and self.now - ended > self.policy.grouping.quiet_period:
                group = service.add_group(
                    self.session,
                    signal=signal,
                    fingerprint=fingerprint,
                    now=self.now,
                    previous_id=group.id,
                )
            else:
                group.resolved_at = None
        else:
            group = service.add_group(
                self.session,
                signal=signal,
                fingerprint=fingerprint,
                now=self.now,
                previous_id=None,
            )
        group.count += 1
        group.last_seen = max(group.last_seen, self.now)
        if signal_rank(signal.severity) > signal_rank(group.severity):
            group.severity = signal.severity
        return group

    def inhibitor(self, signal: Signal) -> tuple[Candidate, Inhibition] | None:
        """A live candidate or open incident whose archetype explains this signal on a system
        that shares one of the rule's components with it."""
        mine = self.components(signal.system_id)
        for rule in self.policy.inhibitions:
            if signal.archetype not in rule.holds or not mine:
                continue
            shared_kinds = set(rule.via)
            wanted = {c for c in mine if c[0] in shared_kinds}
            for candidate in service.recent_candidates(
                self.session, archetypes=[rule.when.value], since=self.now - self.window
            ):
                if self.live(candidate) is None:
                    continue
                theirs: set[tuple[str, str]] = set()
                if candidate.component:
                    kind, _, name = candidate.component.partition(":")
                    theirs.add((kind, name))
                for system in service.systems_of(self.session, candidate_ids=[candidate.id])[
                    candidate.id
                ]:
                    theirs |= self.components(system)
                if wanted & theirs:
                    return candidate, rule
        return None

    def find(self, signal: Signal, key: Key) -> Candidate | None:
        if key[1] == "report":
            if signal.conversation_id:
                found = self.live(
                    service.candidate_of_conversation(
                        self.session, conversation_id=signal.conversation_id
                    )
                )
                if found is not None:
                    return found
            system = matching.system_of(signal)
            if system:
                for candidate in service.candidates_covering(self.session, system=system):
                    if self.live(candidate) is not None:
                        return candidate
        return self.live(service.latest_candidate(self.session, key=key[0]))

    def may_start(self, signal: Signal, group: SignalGroup) -> bool:
        grouping = self.policy.grouping
        if signal.source == "report":
            return True
        if signal_rank(group.severity) < signal_rank(grouping.min_candidate_severity):
            return False
        return signal.confidence is None or signal.confidence >= grouping.min_candidate_confidence

    def may_lead(self, signal: Signal) -> bool:
        """Whether a signal may give a candidate its archetype: one too weak to start a
        candidate alone (severity, confidence) may join one, not lead it."""
        grouping = self.policy.grouping
        if signal_rank(signal.severity) < signal_rank(grouping.min_candidate_severity):
            return False
        return signal.confidence is None or signal.confidence >= grouping.min_candidate_confidence

    def start(self, signal: Signal, key: Key) -> Candidate:
        system = matching.system_of(signal) or "an unnamed system"
        if key[1] == "component":
            title = f"{signal.archetype or signal.kind} across systems sharing {key[2]}"
        elif key[1] == "report":
            title = f"Reports about {system}"
        else:
            title = f"{signal.archetype or signal.kind} on {system}"
        candidate = Candidate(
            key=key[0],
            basis=key[1],
            component=key[2],
            archetype=signal.archetype,
            title=f"{title}: {signal.summary}"[:300],
            status=CandidateStatus.pending,
            severity="SEV4",
            explanation=[],
            conversations=[],
            users=[],
            first_signal_at=self.now,
            last_signal_at=self.now,
            created_at=self.now,
            updated_at=self.now,
            reasons=links.first_reasons(signal, self.rate(signal)),
            evidence=evidence.start(self.baseline(signal)),
        )
        self.session.add(candidate)
        self.session.flush()
        return candidate

    def one(self, signal: Signal, fingerprint: str, key: Key) -> None:
        group = self.group(signal, fingerprint)
        # The signal's and group's changes are flushed once, when the signal is done.
        with self.session.no_autoflush:
            self._one(signal, fingerprint, key, group)
        self.session.flush()

    def _one(self, signal: Signal, fingerprint: str, key: Key, group: SignalGroup) -> None:
        signal.group_id = group.id
        held = matching.holding_rule(self.rules(), signal, fingerprint)
        if held is not None:
            signal.held_by = group.held_by = held
            return
        current = self.live(
            self.session.get(Candidate, group.candidate_id) if group.candidate_id else None
        )
        link = links.find(
            self.session,
            signal,
            since=self.now - self.window,
            depends_on=self.depends_on,
            live=self.live,
        )
        if link is not None and link.candidate is current:
            link = None  # its group brings it there anyway
        candidate = link.candidate if link is not None else current
        if candidate is None and (found := self.inhibitor(signal)) is not None:
            candidate, rule = found
            signal.held_by = group.held_by = f"inhibition:{rule.name}"
        if candidate is None:
            candidate = self.find(signal, key)
        if candidate is None:
            if not self.may_start(signal, group):
                return
            candidate = self.start(signal, key)
        if group.candidate_id == candidate.id:
            new_group = False
        elif current is not None:  # joined by trace or conversation: the group stays
            new_group = not service.group_has_joined(
                self.session, group_id=group.id, candidate_id=candidate.id
            )
        else:
            new_group = True
            group.candidate_id = candidate.id
        signal.candidate_id = candidate.id
        if link is not None:
            signal.linked_by = link.name
        self.absorb(candidate, signal, group, new_group, link)

    # -- a candidate takes a signal -------------------------------------------------------

    def absorb(
        self,
        candidate: Candidate,
        signal: Signal,
        group: SignalGroup,
        new_group: bool,
        link: links.Link | None = None,
    ) -> None:
        candidate.signal_count += 1
        candidate.group_count += int(new_group)
        candidate.last_signal_at = max(candidate.last_signal_at, self.now)
        candidate.updated_at = self.now
        if signal_rank(signal.severity) > signal_rank(candidate.top_signal_severity):
            candidate.top_signal_severity = signal.severity
        _track(candidate, "conversations", signal.conversation_id)
        attributes = signal.attributes or {}
        for name in ("user", "user_id", "end_user"):
            if isinstance(attributes.get(name), (str, int)):
                _track(candidate, "users", str(attributes[name]))
        for name in ("conversations", "users"):  # what the sender counted itself
            counted = attributes.get(name)
            if isinstance(counted, int) and counted > candidate.reported_affected:
                candidate.reported_affected = counted
        system = matching.system_of(signal)
        systems = service.systems_of(self.session, candidate_ids=[candidate.id])[candidate.id]
        added = system is not None and system not in systems
        if system is not None and added:
            service.add_system(self.session, candidate=candidate, system=system)
            systems.append(system)
        before, archetype_before = candidate.severity, candidate.archetype
        assessed_before = (candidate.severity_points, list(candidate.explanation or []))
        candidate.evidence = evidence.observe(candidate.evidence, signal, self.policy.severity)
        if link is not None:
            links.weigh(
                candidate,
                signal,
                link,
                new_group=new_group,
                rate=self.rate,
                may_lead=self.may_lead(signal),
            )
        self.assess(candidate, systems)
        incident = self.incident_of(candidate)
        if incident is not None:
            if new_group and signal.interaction_ids:  # a new kind of signal adds evidence
                self.collect(
                    incident, signal, triage.evidence_ids([(signal.id, signal.interaction_ids)])
                )
            elif signal.interaction_ids:
                self.collect_repeat(incident, signal, group)
            if added and signal.system_id:
                incidents.link_systems(
                    self.session, incident=incident, system_ids=[signal.system_id]
                )
            if new_group or added:
                incidents.record_entry(
                    self.session,
                    incident=incident,
                    kind="signal_absorbed",
                    text=(
                        f"Signal {signal.id} joined ({signal.source}/{signal.kind} on "
                        f"{system or 'no system'}, {signal.severity})"
                        + (f" by {link.by} {link.value}" if link is not None else "")
                        + f": {signal.summary}"
                    )[:2000],
                    data={
                        "signal": signal.id,
                        "group": group.id,
                        "candidate": candidate.id,
                        "held_by": signal.held_by,
                        "linked_by": signal.linked_by,
                    },
                    actor=CORRELATOR,
                )
            raised = link is not None and links.carry(
                self.session,
                incident,
                candidate,
                signal,
                before=before,
                archetype_before=archetype_before,
                actor=CORRELATOR,
            )
            if raised:
                log.warning("incident %s raised to %s", incident.id, candidate.severity)
            if candidate.severity != before and not raised:
                incidents.record_entry(
                    self.session,
                    incident=incident,
                    kind="severity_assessed",
                    text=f"The severity policy now rates candidate {candidate.id} "
                    f"{candidate.severity} (was {before}): {service.explain(candidate)}",
                    data={
                        "candidate": candidate.id,
                        "severity": candidate.severity,
                        "before": before,
                    },
                    actor=CORRELATOR,
                )
        elif candidate.status == CandidateStatus.pending and self.opens(candidate):
            self.open(candidate, signal, before, assessed_before)
        elif candidate.status == CandidateStatus.pending:
            self.escalate(candidate, systems)

    # -- evidence ---------------------------------------------------------------------------

    def collect(
        self,
        incident: Incident,
        signal: Signal,
        interaction_ids: list[int],
        *,
        why: str | None = None,
        timeline: bool = True,
    ) -> list[EvidenceItem]:
        wanted = EvidenceWanted(
            incident_id=incident.id,
            actor=CORRELATOR,
            interaction_ids=tuple(interaction_ids),
            why=why or f"behind signal {signal.id}",
            timeline=timeline,
        )
        return [item for items in pipeline.publish(self.session, wanted) for item in items]

    def collect_repeat(self, incident: Incident, signal: Signal, group: SignalGroup) -> None:
        """A repeat adds its interactions to the incident's evidence, without a timeline
        entry each, until its group has added `evidence_cap`; reaching the cap is logged
        once."""
        room = self.evidence_cap - group.evidence_count
        if room <= 0:
            return
        ids = [i for i in signal.interaction_ids or [] if isinstance(i, int)][:room]
        items = self.collect(
            incident,
            signal,
            ids,
            why=f"repeat of signal group {group.id}: signal {signal.id}",
            timeline=False,
        )
        group.evidence_count += sum(1 for item in items if item.kind == "interaction")
        if group.evidence_count >= self.evidence_cap:
            incidents.record_entry(
                self.session,
                incident=incident,
                kind="evidence_collected",
                text=f"Repeats of signal group {group.id} ({group.kind} on "
                f"{group.system or 'no system'}) added {group.evidence_count} interactions "
                f"to the evidence, the most the setting evidence_repeat_cap allows; later "
                "repeats are counted on the group, not collected.",
                data={"group": group.id, "interactions": group.evidence_count, "capped": True},
                actor=CORRELATOR,
            )

    def assess(self, candidate: Candidate, systems: list[str]) -> None:
        facts = [f for f in (self.facts(s) for s in systems) if f is not None]
        impact = evidence.impact(
            facts,
            candidate.evidence or {},
            top_signal_severity=candidate.top_signal_severity,
            affected=max(
                len(candidate.conversations), len(candidate.users), candidate.reported_affected
            ),
            systems=len(systems),
            ongoing=candidate.last_signal_at
            >= self.now - self.policy.severity.factors.ongoing.within,
            signals=candidate.signal_count,
            first=candidate.first_signal_at,
            now=self.now,
        )
        assessment = assess(self.policy.severity, impact)
        if candidate.signal_count <= 1 and "start_points" not in (candidate.evidence or {}):
            candidate.evidence = {**(candidate.evidence or {}), "start_points": assessment.points}
        candidate.severity = assessment.severity
        candidate.severity_points = assessment.points
        candidate.explanation = assessment.factors

    def escalate(self, candidate: Candidate, systems: list[str]) -> None:
        """Escalate a pending candidate that keeps growing below the threshold, once."""
        rule = self.policy.severity.escalation
        if rule is None or candidate.escalated_at is not None:
            return
        if self.now - candidate.first_signal_at < rule.after:
            return
        started = int((candidate.evidence or {}).get("start_points", candidate.severity_points))
        if candidate.severity_points <= started:
            return
        facts = [f for f in (self.facts(s) for s in systems) if f is not None]
        owner, whose = evidence.owner_of(facts, rule.owner)
        triage.escalate(candidate, owner=owner, whose=whose, started=started, now=self.now)

    def opens(self, candidate: Candidate) -> bool:
        threshold = self.policy.severity.open_incident_at.value
        return candidate.archetype is not None and at_or_above(candidate.severity, threshold)

    def open(
        self,
        candidate: Candidate,
        signal: Signal,
        before: str,
        assessed_before: tuple[int, list[dict[str, Any]]],
    ) -> None:
        """Open the candidate's incident now that it crossed the threshold, the timeline
        saying which signal took it there and what changed."""
        threshold = self.policy.severity.open_incident_at.value
        points_before, factors_before = assessed_before
        changed = evidence.changes(factors_before, candidate.explanation)
        if candidate.signal_count <= 1:
            crossed = f"its first signal, {signal.id}, rates {candidate.severity}"
        else:
            crossed = (
                f"signal {signal.id} ({signal.source}/{signal.kind}) took it from {before} "
                f"({points_before} points) to {candidate.severity} after "
                f"{candidate.signal_count - 1} signal(s) since {candidate.first_signal_at:%H:%M} "
                "UTC: " + ("; ".join(changed) or "no factor changed")
            )
        incident = triage.incident_from(
            self.session, candidate, actor=CORRELATOR, data=Accept(), now=self.now
        )
        triage.decide(candidate, CandidateStatus.opened, CORRELATOR, self.now)
        log.warning(
            "incident %s opened at once from candidate %s (%s): %s",
            incident.id,
            candidate.id,
            candidate.severity,
            candidate.title,
        )
        incidents.record_entry(
            self.session,
            incident=incident,
            kind="opened_by_policy",
            text=(
                f"Opened at once: candidate {candidate.id} is {candidate.severity}, at or "
                f"above the policy's threshold {threshold}; {crossed}. "
                f"{service.explain(candidate)}"
            )[:4000],
            data={
                "candidate": candidate.id,
                "severity": candidate.severity,
                "points": candidate.severity_points,
                "factors": candidate.explanation,
                "signal": signal.id,
                "before": {"severity": before, "points": points_before},
                "changed": changed,
                "escalated_to": candidate.escalated_to,
            },
            actor=CORRELATOR,
        )


def _track(candidate: Candidate, field: str, value: str | None) -> None:
    current: list[str] = getattr(candidate, field)
    if value and value not in current and len(current) < MAX_TRACKED:
        setattr(candidate, field, [*current, value])
