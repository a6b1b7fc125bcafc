"""Roles and what each may do. The one place that decides permissions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from blastwall.errors import PermissionDenied


class Role(StrEnum):
    viewer = "viewer"
    responder = "responder"
    commander = "commander"
    legal = "legal"
    admin = "admin"


class Permission(StrEnum):
    read = "read"
    write_incidents = "write_incidents"
    write_timeline = "write_timeline"
    assign_roles = "assign_roles"
    decide_incidents = "decide_incidents"  # close, decline, merge, restrict
    see_restricted = "see_restricted"
    record_changes = "record_changes"
    write_inventory = "write_inventory"
    read_audit = "read_audit"
    manage_tokens = "manage_tokens"
    ingest = "ingest"  # send telemetry, alerts and signals
    report = "report"  # report a suspicious output
    see_content = "see_content"  # prompts, outputs, tool arguments in telemetry
    manage_notifications = "manage_notifications"  # channels, the outbox, resending
    decide_obligations = "decide_obligations"  # confirm or dismiss, record submissions


_P = Permission
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.viewer: frozenset({_P.read, _P.report}),
    Role.responder: frozenset(
        {
            _P.read,
            _P.write_incidents,
            _P.write_timeline,
            _P.record_changes,
            _P.ingest,
            _P.report,
            _P.see_content,
        }
    ),
    Role.commander: frozenset(
        {
            _P.read,
            _P.write_incidents,
            _P.write_timeline,
            _P.record_changes,
            _P.assign_roles,
            _P.decide_incidents,
            _P.ingest,
            _P.report,
            _P.see_content,
        }
    ),
    Role.legal: frozenset(
        {
            _P.read,
            _P.write_timeline,
            _P.see_restricted,
            _P.read_audit,
            _P.report,
            _P.see_content,
            _P.decide_obligations,
        }
    ),
    Role.admin: frozenset(Permission),
}


@dataclass(frozen=True)
class Principal:
    """Who is acting: a token's name and role, or a local operator on the CLI."""

    name: str
    role: Role
    token_id: int | None = None

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            allowed = sorted(r.value for r, grants in GRANTS.items() if permission in grants)
            raise PermissionDenied(
                f"The role '{self.role.value}' may not {permission.value.replace('_', ' ')}. "
                f"Use a token with one of these roles: {', '.join(allowed)}."
            )


def local_operator() -> Principal:
    """The principal of a person running the CLI on the server's machine."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Principal(name=f"cli:{user}", role=Role.admin)
