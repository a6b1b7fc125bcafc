"""Evidence from other domains, and evidence leaving Blastwall.

    collecting  the interactions behind signals (with their trace trees), configuration
                snapshots, uploaded files, reproduction attempts, hunt results
    export      the incident's evidence bundle, verified against the ledger first

`collect_for_incident` is the pipeline's evidence step (`EvidenceWanted`); none of these
commit: the caller's transaction holds the items, their ledger records and the timeline.
"""

from blastwall.evidence.flows.collecting import (
    add_file,
    add_reproduction,
    attach_hunt,
    collect,
    collect_for_incident,
    snapshot_config,
)
from blastwall.evidence.flows.export import export_incident

__all__ = [
    "add_file",
    "add_reproduction",
    "attach_hunt",
    "collect",
    "collect_for_incident",
    "export_incident",
    "snapshot_config",
]
