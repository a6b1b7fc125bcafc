"""One correlation call: the policy, the time, and what it looks up once (inventory facts,
noise rules, incidents), with the ratings a signal alone earns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal, Role
from blastwall.correlation import evidence, links, matching, service
from blastwall.correlation.models import Candidate, NoiseRule
from blastwall.correlation.policy import Policy
from blastwall.correlation.schemas import CandidateStatus
from blastwall.correlation.service import SystemFacts
from blastwall.correlation.severity import Assessment, assess, signal_rank
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.signals.models import Signal

CORRELATOR = Principal(name="blastwall:correlation", role=Role.admin)
WAITING = frozenset({CandidateStatus.pending, CandidateStatus.declined})

Key = tuple[str, str, str | None]  # candidate key, basis, component


class Run:
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

    def may_lead(self, signal: Signal) -> bool:
        """Whether a signal may give a candidate its archetype: one too weak to start a
        candidate alone (severity, confidence) may join one, not lead it."""
        grouping = self.policy.grouping
        if signal_rank(signal.severity) < signal_rank(grouping.min_candidate_severity):
            return False
        return signal.confidence is None or signal.confidence >= grouping.min_candidate_confidence
