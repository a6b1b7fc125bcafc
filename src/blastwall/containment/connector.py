"""The built-in containment connector: the control plane's own state, which guards read.

Registered as a plugin like any other (see `blastwall.hookspecs`); the action's rows and the
control revision are written by the containment flows, and guards receive the new state over
`GET /api/v1/controls/stream`. This connector says so on the timeline."""

from __future__ import annotations

from blastwall.containment.schemas import ActionRecord
from blastwall.hookspecs import hookimpl
from blastwall.plugins import ContainmentConnector

__all__ = ["ControlPlaneConnector", "blastwall_containment_connectors"]


class ControlPlaneConnector:
    """Every control, enforced by the guards of the system."""

    name = "control-plane"

    def supports(self, control: str) -> bool:
        return True

    def apply(self, action: ActionRecord) -> str:
        return (
            f"control state of {action.system_id} changed; its guards enforce "
            f"{action.control} as soon as the new state reaches them"
        )

    def revert(self, action: ActionRecord, *, reason: str) -> str:
        return f"{action.control} lifted from the control state of {action.system_id} ({reason})"


@hookimpl
def blastwall_containment_connectors() -> list[ContainmentConnector]:
    """The control plane itself."""
    return [ControlPlaneConnector()]
