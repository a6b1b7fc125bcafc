"""Containment across domains: the incident, the inventory, the policy, the evidence
snapshot, the timeline and the connectors.

The order of every change is fixed: the current control state and the system's recent
interactions are preserved first (a snapshot recorded on the incident), then the state
changes and the connectors act, then the timeline says what was done; one transaction
holds all of it, so nothing changes without its record.

    requests   request an action; a second person approves or rejects it
    lifting    revert or withdraw an action; expiry
    guards     what guards report (undeclared tools and agents)
    targets    what a request names: system, tool, agent, version
    acting     the snapshot and the connectors around each change
"""

from blastwall.containment.flows.guards import report_undeclared
from blastwall.containment.flows.lifting import (
    EXPIRY,
    expire_action,
    expire_undecided,
    revert_action,
)
from blastwall.containment.flows.requests import approve_action, reject_action, request_action

__all__ = [
    "EXPIRY",
    "approve_action",
    "expire_action",
    "expire_undecided",
    "reject_action",
    "report_undeclared",
    "request_action",
    "revert_action",
]
