"""What the containment section offers: every control the inventory declares on each of the
incident's systems, made concrete (one offer per tool, agent, prompt or model it can
name), with the preview a person reads before applying it: what it does and to whom,
and whether the containment policy lets them apply it at once or a second person must
approve it. Nothing here decides anything: applying goes through the same flow as the
API (`containment.flows.request_action`), which checks all of it again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal
from blastwall.containment.flows.requests import ALTERING
from blastwall.containment.flows.targets import target
from blastwall.containment.policy import Policy
from blastwall.incidents.models import Incident
from blastwall.inventory import versions
from blastwall.inventory.schemas import Control, SystemSpec


@dataclass
class Offer:
    """One control on one target, as the section offers it."""

    key: str
    """Unique on the page: the ids of the offer's form fields start with it."""
    system_id: str
    control: Control
    label: str
    target: str
    """The system and what of it the control names, in words."""
    params: dict[str, Any]
    """The parameters the offer fixes (sent as hidden fields)."""
    effect: str
    """What the control will do, and to whom."""
    approval: str
    """Whether it applies at once or waits for a second person, and why."""
    waits: bool
    asks: str | None = None
    """The parameter the person gives in the form: version, patterns or per_minute."""
    choices: list[str] = field(default_factory=list)
    """The versions a pin may take (the current one first)."""
    rollback: bool = False
    problem: str | None = None
    """Why the offer cannot be applied now (a roll-back with nothing to roll back to)."""
    acknowledge: bool = False
    """AI Act Art. 73(6): the request must carry an acknowledgement."""


def _effect(spec: SystemSpec, control: Control, params: dict[str, Any]) -> str:
    """What the guards of the system will do, in words: the control's target and scope."""
    system = spec.id
    tool = params.get("tool")
    if control is Control.suspend:
        if params.get("agent"):
            return (
                f"Stops the agent {params['agent']} of {system}: its guards refuse every "
                "call and every tool of that agent, for all users. Other agents go on."
            )
        return (
            f"Stops {system} altogether: its guards refuse every call and every tool, for all "
            "users and agents."
        )
    if control is Control.revoke_tool:
        return (
            f"Denies every call of the tool {tool} on {system}, for all users and agents; "
            "its other tools go on."
        )
    if control is Control.require_approval:
        which = "every tool call" if params.get("all") else f"each call of the tool {tool}"
        return (
            f"Makes {which} on {system} wait for a person's approval before it runs, for all "
            "users and agents."
        )
    if control is Control.pin_prompt_version:
        return (
            f"Makes every call of {system}, for all users, use the prompt {params['prompt']} "
            "at the version pinned."
        )
    if control is Control.pin_model_version:
        return (
            f"Makes every call of {system}, for all users, use the model {params['model']} "
            "at the version pinned."
        )
    if control is Control.block_input:
        return (
            f"Refuses every input to {system} that matches one of the patterns you give, "
            "for all users."
        )
    if control is Control.quarantine_output:
        return (
            f"Holds every output of {system} for a person's review instead of handing it to "
            "the user, for all users."
        )
    if control is Control.rate_limit:
        return f"Limits the model calls of {system} to the number a minute you give, per guard."
    fallback = spec.fallback or "(the inventory declares no fallback text)"
    return (
        f"Takes {system} out of service for all users: its guards refuse every call and "
        f"tool and answer with its fallback: {fallback}"
    )


def _target(system_id: str, params: dict[str, Any], asks: str | None, rollback: bool) -> str:
    """The offer's target in words: the system, and the tool, agent, prompt or model."""
    words = [f"system {system_id}"]
    if params.get("all"):
        words.append("every tool")
    for name in ("tool", "agent", "prompt", "model"):
        if params.get(name):
            words.append(f"{name} {params[name]}")
    if rollback:
        words[-1] += " (the version before the incident)"
    elif asks == "version":
        words[-1] += " (the version you choose below)"
    return ", ".join(words)


def _targets(spec: SystemSpec, control: Control) -> list[tuple[str, dict[str, Any], str | None]]:
    """The offers of one control: a label, the parameters it fixes, the one it asks for."""
    tools = [t.name for t in spec.components.tools]
    if control is Control.suspend:
        agents = [("Suspend agent " + a.name, {"agent": a.name}, None) for a in spec.agents]
        return [(f"Suspend {spec.id}", {}, None), *agents]
    if control is Control.revoke_tool:
        return [(f"Revoke tool {t}", {"tool": t}, None) for t in tools]
    if control is Control.require_approval:
        each = [(f"Require approval for tool {t}", {"tool": t}, None) for t in tools]
        return [*each, ("Require approval for every tool", {"all": True}, None)]
    if control in (Control.pin_prompt_version, Control.pin_model_version):
        kind = "prompt" if control is Control.pin_prompt_version else "model"
        return [
            (f"Pin {kind} {c.id} to a version", {kind: c.id}, "version")
            for c in versions.declared(spec, kind)
        ]
    if control is Control.block_input:
        return [("Block inputs that match patterns", {}, "patterns")]
    if control is Control.quarantine_output:
        return [("Quarantine outputs", {}, None)]
    if control is Control.rate_limit:
        return [("Limit the rate of model calls", {}, "per_minute")]
    return [("Switch to the manual fallback", {}, None)]


def _approval(policy: Policy, principal: Principal, control: Control, incident: Incident) -> str:
    """The policy's answer for this person, control and severity, as a sentence."""
    role, severity = principal.role.value, incident.severity.value
    if policy.preauthorised_for(principal.role, control, incident.severity):
        return (
            f"Applies at once: the containment policy pre-authorises {control.value} for "
            f"{role} at {severity}."
        )
    approvers = " or ".join(r.value for r in policy.approvers)
    return (
        f"Needs a second person's approval: the containment policy does not pre-authorise "
        f"{control.value} for {role} at {severity}. It waits until a {approvers} other than "
        "you approves it."
    )


def _choices(session: Session, spec: SystemSpec, kind: str, component: str) -> list[str]:
    """The versions a pin may take, newest first."""
    known = versions.known(session, spec=spec, kind=kind, component_id=component)
    names: list[str] = []
    for version in reversed(known):
        if version.version not in names:
            names.append(version.version)
    return names


def _rollback(session: Session, spec: SystemSpec, incident: Incident, offer: Offer) -> Offer:
    """The roll-back beside a pin: which version it would take (found as the flow finds it),
    or why there is none."""
    kind = "prompt" if offer.control is Control.pin_prompt_version else "model"
    component = offer.params[kind]
    params = dict(offer.params)
    note, problems = target(session, spec, incident, offer.control, params, rollback=True)
    back = Offer(
        key=f"{offer.key}-rollback",
        system_id=offer.system_id,
        control=offer.control,
        label=f"Roll back {kind} {component}",
        target=_target(offer.system_id, offer.params, None, True),
        params=dict(offer.params),
        effect=(
            f"Makes every call of {spec.id}, for all users, use {kind} {component} as it was "
            f"before the incident: {note}."
            if not problems
            else f"Would pin {kind} {component} to the version before the incident."
        ),
        approval=offer.approval,
        waits=offer.waits,
        rollback=True,
        problem="; ".join(p.message for p in problems) or None,
        acknowledge=offer.acknowledge,
    )
    return back


def offers(
    session: Session,
    *,
    incident: Incident,
    spec: SystemSpec,
    policy: Policy,
    principal: Principal,
    obligation_held: bool,
) -> list[Offer]:
    """Every control the inventory declares on the system, on each target it can name, in
    the inventory's order; `obligation_held`: the incident has an AI Act serious-incident
    obligation (controls that alter the system then need an acknowledgement)."""
    found: list[Offer] = []
    for control in spec.controls:
        approval = _approval(policy, principal, control, incident)
        waits = not policy.preauthorised_for(principal.role, control, incident.severity)
        for label, params, asks in _targets(spec, control):
            offer = Offer(
                key=f"offer-{spec.id}-{len(found)}",
                system_id=spec.id,
                control=control,
                label=label,
                target=_target(spec.id, params, asks, False),
                params=params,
                effect=_effect(spec, control, params),
                approval=approval,
                waits=waits,
                asks=asks,
                acknowledge=obligation_held and control in ALTERING,
            )
            if asks == "version":
                kind = "prompt" if control is Control.pin_prompt_version else "model"
                offer.choices = _choices(session, spec, kind, params[kind])
                found.append(offer)
                found.append(_rollback(session, spec, incident, offer))
                continue
            found.append(offer)
    return found
