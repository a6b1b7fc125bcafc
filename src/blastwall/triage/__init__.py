"""The triage pack of an incident: changes, anomalies, blast radius, similar incidents,
playbook steps, owners and classification, assembled in one call."""

from blastwall.triage.service import triage_pack

__all__ = ["triage_pack"]
