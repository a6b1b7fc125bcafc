"""Blastwall's errors: one hierarchy, mapped to HTTP in one place (`api.py`).

    BlastwallError
    ├── ClientError                 the caller can fix it (HTTP 4xx)
    │   ├── NotInitialised          400: the database is not set up (`blastwall init`)
    │   ├── AuthenticationRequired  401: no token, or a bad one
    │   ├── PermissionDenied        403: the token's role may not do this
    │   ├── NotFound                404: no such object (or not visible to the caller)
    │   ├── RequestTimeout          408: a request's headers or body came too slowly
    │   ├── Conflict                409: the object's state forbids it
    │   │   ├── InvalidTransition   409: a status change the state machine does not allow
    │   │   ├── LedgerBroken        409: the evidence ledger does not verify; nothing exported
    │   │   └── SigningKeyMissing   409: no readable evidence signing key
    │   ├── PayloadTooLarge         413: a request body over its limit
    │   ├── UnsupportedMediaType    415: a body of a media type the route does not take
    │   ├── TooManyRequests         429: a client asked too often (Retry-After)
    │   └── InvalidInput            422: the input is malformed; `problems` lists each one
    │       ├── UndecodableBody     400: an OTLP body that cannot be decoded
    │       └── UnknownKind         422: a kind of taxonomy entry the tables do not have
    ├── ServerError                 500: Blastwall's own fault
    │   ├── PluginError             500: a plugin failed to load or misbehaved
    │   ├── PlaybookError           500: the organisation's playbook folder holds bad files
    │   ├── PolicyError             500: the containment policy file is missing or wrong
    │   │   └── TriggerPolicyError  500: the notification policy file is missing or wrong
    │   ├── KeyFileError            500: a key file is missing or not an Ed25519 key
    │   ├── BlobMissing             500: the vault lost a blob, or it no longer matches
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


class NotInitialised(ClientError):
    title = "Not initialised"


class PermissionDenied(ClientError):
    status_code = 403
    title = "Permission denied"


class NotFound(ClientError):
    status_code = 404
    title = "Not found"


class RequestTimeout(ClientError):
    status_code = 408
    title = "Request timeout"


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


class LedgerBroken(Conflict):
    """The ledger, its checkpoints or the evidence tables do not verify: nothing is exported
    until an administrator finds out why."""

    title = "Evidence ledger does not verify"

    def __init__(self, detail: str, problems: list[str]) -> None:
        super().__init__(detail)
        self.problems = problems

    def extra(self) -> dict[str, Any]:
        return {"problems": self.problems}

    def __str__(self) -> str:
        return self.detail + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class SigningKeyMissing(Conflict):
    """The installation has no readable signing key: nothing can be signed until it has."""

    title = "Signing key missing"


class PayloadTooLarge(ClientError):
    status_code = 413
    title = "Payload too large"


class UnsupportedMediaType(ClientError):
    status_code = 415
    title = "Unsupported media type"


class TooManyRequests(ClientError):
    status_code = 429
    title = "Too many requests"


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


class UndecodableBody(InvalidInput):
    status_code = 400
    title = "Undecodable body"


class UnknownKind(InvalidInput):
    """A kind of entry the framework (or the tables) does not have; `hint` names the kinds
    there are."""

    def __init__(self, kind: str, kinds: list[str]) -> None:
        self.hint = f"choose one of {', '.join(kinds)}"
        super().__init__(f"No entries of kind '{kind}' here.", [Problem("kind", self.hint)])


class ServerError(BlastwallError):
    status_code = 500
    title = "Internal error"


class PluginError(ServerError):
    title = "Plugin error"


class PlaybookError(ServerError):
    """The organisation's playbook folder holds bad files: the server's configuration, not
    the request, must be fixed."""

    title = "Playbook library error"

    def __init__(self, detail: str, problems: list[Problem]) -> None:
        super().__init__(detail)
        self.problems = problems

    def extra(self) -> dict[str, Any]:
        return {"errors": [p.as_dict() for p in self.problems]}

    def __str__(self) -> str:
        return self.detail + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class PolicyError(ServerError):
    """The containment policy file is missing or wrong: the server's configuration, not the
    request, must be fixed."""

    title = "Containment policy error"


class TriggerPolicyError(PolicyError):
    """The notification policy (which events go to which channels) is missing or wrong."""

    title = "Notification policy error"


class KeyFileError(ServerError):
    """A key file is missing or is not an Ed25519 key."""

    title = "Key file error"


class BlobMissing(ServerError):
    """The vault has no blob with this hash, or it no longer matches its hash."""

    title = "Evidence blob missing"


class NotInstalled(ServerError):
    status_code = 501
    title = "Not installed"


class Unavailable(BlastwallError):
    status_code = 503
    title = "Service unavailable"
