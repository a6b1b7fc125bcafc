"""A correlation run's evidence: what a signal joining an incident adds to its evidence,
through the pipeline's `EvidenceWanted`."""

from __future__ import annotations

from blastwall import pipeline
from blastwall.correlation.flows.run import CORRELATOR, Run
from blastwall.correlation.models import SignalGroup
from blastwall.evidence.models import EvidenceItem
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.pipeline import EvidenceWanted
from blastwall.signals.models import Signal


class Collecting(Run):
    """Evidence behind the signals that join an incident."""

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
