"""The one identity of a tool or agent name, shared by the inventory, containment controls,
the guard, the detectors, the retro-hunt and the affected report.

Names are compared case-insensitively, with `_`, `-`, `.` and white space treated alike, so
an inventory's `issue-refund` is an application's `issue_refund` and an instrumentation's
`Issue Refund`. The server imports it from here, so guard and server share one definition.
"""

from __future__ import annotations

import re

__all__ = ["same_name", "tool_key"]

_SEPARATORS = re.compile(r"[\s_.\-]+")


def tool_key(name: str) -> str:
    """The canonical form of a tool or agent name: `Issue_Refund` -> `issue-refund`."""
    return _SEPARATORS.sub("-", name.strip().lower())


def same_name(a: str, b: str) -> bool:
    """Whether two tool or agent names name the same thing."""
    return tool_key(a) == tool_key(b)
