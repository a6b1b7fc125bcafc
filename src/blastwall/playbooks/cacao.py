"""A playbook as an OASIS CACAO Security Playbook 2.0 document (JSON), for SOAR tools.

The steps become a linear workflow: `start`, one `action` step per check, containment,
evidence or communication step (a manual command saying what to do, for the incident
response team, the one agent), a `switch-condition` per decision (the decision is the
playbook variable the switch reads; each option is a branch of one step recording it and an
end of its own, then the workflow goes on to the next step), and `end`. A step's `when`
conditions are written in its description. Identifiers are UUIDv5 of the playbook id, its
version and the step id, so the same playbook always exports to the same document.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from blastwall.playbooks.library import Playbook, Step, StepKind

__all__ = ["to_cacao"]

_NAMESPACE = uuid.UUID("5d0b2a63-7d3e-4c0b-9a43-2f1f6f8e4b17")
_TYPES = {
    StepKind.check: "investigation",
    StepKind.containment: "mitigation",
    StepKind.evidence: "investigation",
    StepKind.communication: "notification",
    StepKind.decision: "investigation",
}


def _id(kind: str, *parts: object) -> str:
    return f"{kind}--{uuid.uuid5(_NAMESPACE, '/'.join(map(str, (kind, *parts))))}"


def _description(step: Step) -> str:
    lines = [step.detail] if step.detail else []
    if step.control is not None:
        lines.append(f"Containment control: {step.control.value}.")
    if step.audience:
        lines.append(f"Audience: {step.audience}.")
    if step.when.severity:
        lines.append("Applies at severity " + ", ".join(s.value for s in step.when.severity) + ".")
    if step.when.system_types:
        types = ", ".join(t.value for t in step.when.system_types)
        lines.append(f"Applies to {types} systems.")
    return " ".join(lines) or step.title


def _variable(step: Step) -> str:
    return f"__{step.id.replace('-', '_')}_decision__"


def _decider(step: Step) -> str:
    return (step.decided_by.value if step.decided_by else "incident_commander").replace("_", " ")


def to_cacao(playbook: Playbook, *, created: datetime | None = None) -> dict[str, Any]:
    """The CACAO 2.0 document of a playbook."""
    when = (created or datetime(2026, 1, 1, tzinfo=UTC)).astimezone(UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    key = (playbook.id, playbook.version)
    start, end = _id("start", *key), _id("end", *key)
    ids = [
        _id("switch-condition" if s.kind is StepKind.decision else "action", *key, s.id)
        for s in playbook.steps
    ]
    agent = _id("group", *key, "responders")
    workflow: dict[str, Any] = {start: {"type": "start", "name": "Start", "on_completion": ids[0]}}
    variables: dict[str, Any] = {}
    for index, step in enumerate(playbook.steps):
        following = ids[index + 1] if index + 1 < len(ids) else end
        if step.kind is StepKind.decision:
            variables[_variable(step)] = {
                "type": "string",
                "description": f"{step.title} Options: {', '.join(step.options)}. "
                f"Decided by the {_decider(step)}.",
                "constant": False,
                "external": True,
            }
            workflow.update(_switch(step, ids[index], following, key, agent))
            continue
        workflow[ids[index]] = {
            "type": "action",
            "name": step.title,
            "description": _description(step),
            "commands": [{"type": "manual", "command": step.title}],
            "agent": agent,
            "on_completion": following,
        }
    workflow[end] = {"type": "end", "name": "End"}
    document = _document(playbook, key, stamp, start, workflow, agent)
    if variables:
        document["playbook_variables"] = variables
    return document


def _switch(
    step: Step, step_id: str, following: str, key: tuple[str, int], agent: str
) -> dict[str, Any]:
    """The workflow steps of a decision: a branch per option (one step recording the
    decision, then an end step of the branch), then the switch, which goes on to the next
    step."""
    workflow: dict[str, Any] = {}
    decider = _decider(step)
    cases: dict[str, str] = {}
    for option in step.options:
        branch = _id("action", *key, step.id, "case", option)
        branch_end = _id("end", *key, step.id, "case", option)
        cases[option] = branch
        workflow[branch] = {
            "type": "action",
            "name": f"{step.title} {option}",
            "description": f"The {decider} decided: {option}.",
            "commands": [{"type": "manual", "command": f"Record the decision: {option}"}],
            "agent": agent,
            "on_completion": branch_end,
        }
        workflow[branch_end] = {"type": "end", "name": f"{step.title} {option}: done"}
    workflow[step_id] = {
        "type": "switch-condition",
        "name": step.title,
        "description": _description(step),
        "switch": _variable(step),
        "cases": cases,
        "on_completion": following,
    }
    return workflow


def _document(
    playbook: Playbook,
    key: tuple[str, int],
    stamp: str,
    start: str,
    workflow: dict[str, Any],
    agent: str,
) -> dict[str, Any]:
    """The document around the workflow: identity, kinds, labels, the responders' group."""
    kinds = sorted({_TYPES[s.kind] for s in playbook.steps})
    document: dict[str, Any] = {
        "type": "playbook",
        "spec_version": "cacao-2.0",
        "id": _id("playbook", *key),
        "name": playbook.name,
        "description": playbook.description or playbook.name,
        "playbook_types": kinds,
        "created_by": _id("identity", "blastwall"),
        "created": stamp,
        "modified": stamp,
        "revoked": False,
        "labels": [f"archetype:{a.value}" for a in playbook.archetypes],
        "external_references": [
            {
                "name": "Blastwall playbook",
                "description": f"{playbook.id} version {playbook.version}",
            }
        ],
        "workflow_start": start,
        "workflow": workflow,
        "agent_definitions": {
            agent: {
                "type": "group",
                "name": "Incident response team",
                "description": "The people working the incident; each step says who acts.",
            }
        },
    }
    return document
