"""A candidate takes a signal: its counts and systems, the severity policy's assessment, and
what follows: the incident carries it on, or the candidate opens one at the threshold, or
it is escalated while it keeps growing below."""

from __future__ import annotations

import logging
from typing import Any

from blastwall import pipeline
from blastwall.correlation import evidence, links, matching, service, triage
from blastwall.correlation.flows.collecting import Collecting
from blastwall.correlation.flows.run import CORRELATOR
from blastwall.correlation.models import Candidate, SignalGroup
from blastwall.correlation.schemas import Accept, CandidateStatus
from blastwall.correlation.severity import assess, at_or_above, signal_rank
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.pipeline import IncidentFactsChanged
from blastwall.signals.models import Signal

log = logging.getLogger("blastwall.correlation")
MAX_TRACKED = 1000  # conversations and users remembered per candidate


class Deciding(Collecting):
    """What a candidate and its incident do with a signal that joins them."""

    def absorb(
        self,
        candidate: Candidate,
        signal: Signal,
        group: SignalGroup,
        new_group: bool,
        link: links.Link | None = None,
    ) -> None:
        self.count(candidate, signal, new_group)
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
            self.carry(
                incident,
                candidate,
                signal,
                group,
                new_group=new_group,
                added=added,
                system=system,
                link=link,
                before=before,
                archetype_before=archetype_before,
            )
        elif candidate.status == CandidateStatus.pending and self.opens(candidate):
            self.open(candidate, signal, before, assessed_before)
        elif candidate.status == CandidateStatus.pending:
            self.escalate(candidate, systems)

    def count(self, candidate: Candidate, signal: Signal, new_group: bool) -> None:
        """The candidate's counts, times and the conversations and users it affects."""
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

    def carry(
        self,
        incident: Incident,
        candidate: Candidate,
        signal: Signal,
        group: SignalGroup,
        *,
        new_group: bool,
        added: bool,
        system: str | None,
        link: links.Link | None,
        before: str,
        archetype_before: str | None,
    ) -> None:
        """The candidate's incident takes the signal: its evidence, its systems, the
        timeline, and the severity or archetype the signal raises it to."""
        if new_group and signal.interaction_ids:  # a new kind of signal adds evidence
            self.collect(
                incident, signal, triage.evidence_ids([(signal.id, signal.interaction_ids)])
            )
        elif signal.interaction_ids:
            self.collect_repeat(incident, signal, group)
        if added and signal.system_id:
            linked = incidents.link_systems(
                self.session, incident=incident, system_ids=[signal.system_id]
            )
            if linked:
                pipeline.publish(
                    self.session,
                    IncidentFactsChanged(
                        incident_id=incident.id, actor=CORRELATOR, why=f"system {linked[0]} linked"
                    ),
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
