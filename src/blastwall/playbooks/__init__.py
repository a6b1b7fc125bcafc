"""Playbooks per archetype, attached to incidents as checklists, exported as CACAO 2.0."""

from blastwall.playbooks.library import Playbook, Step, StepKind, library

__all__ = ["Playbook", "Step", "StepKind", "library"]
