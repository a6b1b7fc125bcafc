"""The only way into correlation storage: signal groups, candidates and noise rules.

facts       the inventory as correlation reads it; locks
groups      signal groups and the signals of a candidate
candidates  incident candidates
noise       snoozes and maintenance windows
"""

from blastwall.correlation.service.candidates import (
    add_system,
    baseline_count,
    candidate_of_conversation,
    candidates_covering,
    describe,
    explain,
    get_candidate,
    group_has_joined,
    latest_candidate,
    list_candidates,
    recent_candidates,
    signals_sharing,
    systems_of,
    to_out,
)
from blastwall.correlation.service.facts import (
    INVENTORY,
    InventoryFacts,
    SystemFacts,
    lock,
)
from blastwall.correlation.service.groups import (
    add_group,
    latest_group,
    list_groups,
    list_signals,
    move_candidates,
    reopen_groups,
    resolve_groups,
)
from blastwall.correlation.service.noise import (
    active_rules,
    add_maintenance,
    add_snooze,
    end_rule,
    end_snoozes_of,
    held_signals,
    list_rules,
    rule_out,
)

__all__ = [
    "INVENTORY",
    "InventoryFacts",
    "SystemFacts",
    "active_rules",
    "add_group",
    "add_maintenance",
    "add_snooze",
    "add_system",
    "baseline_count",
    "candidate_of_conversation",
    "candidates_covering",
    "describe",
    "end_rule",
    "end_snoozes_of",
    "explain",
    "get_candidate",
    "group_has_joined",
    "held_signals",
    "latest_candidate",
    "latest_group",
    "list_candidates",
    "list_groups",
    "list_rules",
    "list_signals",
    "lock",
    "move_candidates",
    "recent_candidates",
    "reopen_groups",
    "resolve_groups",
    "rule_out",
    "signals_sharing",
    "systems_of",
    "to_out",
]
