"""What the guard raises. Each message says what was stopped, by which control, and why.

GuardError
├── Unavailable       the control plane is unreachable and the guard fails closed
├── Suspended         the system (or this agent) is suspended
│   └── ManualFallback  the system is switched to its manual fallback
├── ToolDenied        the tool is revoked (or the system suspended)
├── ApprovalRequired  the tool needs approval and did not get it (the message says
│                     who refused it, or that no answer came in time)
├── Blocked           the input matches a blocked pattern
├── Quarantined       outputs are held for review instead of delivered
└── RateLimited       more model calls than the rate limit allows
"""

from __future__ import annotations

from typing import Any


class GuardError(Exception):
    """Base of everything the guard raises; `control` is the control in force (a dict with
    action_id, control, params, incident_id, set_by, reason), when one is."""

    def __init__(self, message: str, control: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.control = control


class Unavailable(GuardError):
    pass


class Suspended(GuardError):
    pass


class ManualFallback(Suspended):
    def __init__(self, message: str, control: dict[str, Any] | None, fallback: str | None):
        super().__init__(message, control)
        self.fallback = fallback


class ToolDenied(GuardError):
    pass


class ApprovalRequired(GuardError):
    pass


class Blocked(GuardError):
    pass


class Quarantined(GuardError):
    """The output is held for review; `held_id` is its number in Blastwall when the guard
    could hand it over (None when the server could not be reached)."""

    def __init__(
        self,
        message: str,
        control: dict[str, Any] | None,
        output: str,
        held_id: int | None = None,
    ) -> None:
        super().__init__(message, control)
        self.output = output
        self.held_id = held_id


class RateLimited(GuardError):
    pass
