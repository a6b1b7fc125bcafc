"""Blastwall's errors: one hierarchy, mapped to HTTP in one place (`api.py`).

    BlastwallError
    ├── ClientError                 the caller can fix it (HTTP 4xx)
    │   ├── AuthenticationRequired  401: no token, or a bad one
    │   ├── PermissionDenied        403: the token's role may not do this
    │   ├── NotFound                404: no such object (or not visible to the caller)
    │   ├── Conflict                409: the object's state forbids it
    │   │   └── InvalidTransition   409: a status change the state machine does not allow
    │   └── InvalidInput            422: the input is malformed; `problems` lists each one
    ├── ServerError                 500: Blastwall's own fault
    │   ├── PluginError             500: a plugin failed to load or misbehaved
    │   └── NotInstalled            501: an optional part is not installed (the message
    │                                    names the extra to install)
    └── Unavailable                 503: busy; retry after a moment (Retry-After)

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """A validation location as a path: ("body", "tools", 0, "name") -> body.tools[0].name"""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class Problem:
    """One problem in an input: where it is and what is wrong."""

    location: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.location, "message": self.message}
        if self.line is not None:
            data["line"] = self.line
        return data

    def __str__(self) -> str:
        where = f"{self.location} (line {self.line})" if self.line is not None else self.location
        return f"{where}: {self.message}"


class BlastwallError(Exception):
    """Base of every error Blastwall raises on purpose."""

    status_code = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extra(self) -> dict[str, Any]:
        """Fields added to the problem document beside title and detail."""
        return {}


class ClientError(BlastwallError):
    status_code = 400
    title = "Bad request"


class AuthenticationRequired(ClientError):
    status_code = 401
    title = "Authentication required"


class PermissionDenied(ClientError):
    status_code = 403
    title = "Permission denied"


class NotFound(ClientError):
    status_code = 404
    title = "Not found"


class Conflict(ClientError):
    status_code = 409
    title = "Conflict"


class InvalidTransition(Conflict):
    title = "Invalid status transition"

    def __init__(self, current: str, requested: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none (final status)"
        super().__init__(
            f"An incident in status '{current}' cannot move to '{requested}'. "
            f"Allowed next statuses: {allowed_text}."
        )
        self.current = current
        self.requested = requested
        self.allowed = allowed

    def extra(self) -> dict[str, Any]:
        return {"current": self.current, "requested": self.requested, "allowed": self.allowed}


class InvalidInput(ClientError):
    status_code = 422
    title = "Invalid input"

    def __init__(self, detail: str, problems: list[Problem] | None = None) -> None:
        super().__init__(detail)
        self.problems = problems or []

    def extra(self) -> dict[str, Any]:
        return {"errors": [p.as_dict() for p in self.problems]}

    def __str__(self) -> str:
        if not self.problems:
            return self.detail
        return self.detail + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class ServerError(BlastwallError):
    status_code = 500
    title = "Internal error"


class PluginError(ServerError):
    title = "Plugin error"


class NotInstalled(ServerError):
    status_code = 501
    title = "Not installed"


class Unavailable(BlastwallError):
    status_code = 503
    title = "Service unavailable"
