"""The Blastwall guard, for AI applications: it enforces the controls an incident responder
applies (suspension, tool revocation, approvals, version pins, input blocks, output
quarantine, rate limits, manual fallback) from a local copy of the control state that the
server keeps current over a push stream.

Imports nothing of the server: only the standard library, httpx and httpx-sse
(`pip install blastwall-guard`; the OpenFeature provider needs `blastwall-guard[openfeature]`).

    guard = Guard("refund-agent", "https://blastwall.internal", token, fail_mode="closed")
    guard.wait_ready()
    plan = guard.check_call()               # raises Suspended, ...; or the pinned versions
    decision = guard.check_tool("issue_refund", {"amount": 20})
"""

from blastwall_guard.client import CallPlan, Guard, ToolDecision
from blastwall_guard.errors import (
    ApprovalRequired,
    Blocked,
    GuardError,
    ManualFallback,
    Quarantined,
    RateLimited,
    Suspended,
    ToolDenied,
    Unavailable,
)

__all__ = [
    "ApprovalRequired",
    "Blocked",
    "CallPlan",
    "Guard",
    "GuardError",
    "ManualFallback",
    "Quarantined",
    "RateLimited",
    "Suspended",
    "ToolDecision",
    "ToolDenied",
    "Unavailable",
]
