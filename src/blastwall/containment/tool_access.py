"""Whether a tool of an AI system can change something, from the permissions the inventory
declares for it: a permission whose action is made of reading verbs reads; anything else
writes, and a tool without declared permissions counts as writing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.inventory.models import System
from blastwall.inventory.schemas import Tool
from blastwall_guard.names import tool_key

#: A permission whose action is made of these words (and at least one verb) only reads.
READING_VERBS = frozenset(
    {
        "read", "get", "list", "search", "query", "view", "lookup", "describe", "fetch",
        "find", "browse", "retrieve", "show", "inspect", "count", "peek", "watch",
    }
)  # fmt: skip
_QUALIFIERS = frozenset({"only", "all", "any", "own", "public"})

Access = Literal["read-only", "writing", "unknown"]


def permission_writes(permission: str) -> bool:
    """Whether a permission lets a tool change something: its action, the part after the
    (last) colon, reads only when its words are reading verbs (`orders:read`,
    `files:read-only`, `tickets:list_all`); anything else writes (`refunds:create`,
    `email:send`, `orders:*`, `orders:read-write`)."""
    words = [w for w in tool_key(permission.rpartition(":")[2]).split("-") if w]
    reads = [w for w in words if w in READING_VERBS]
    return not reads or any(w not in READING_VERBS and w not in _QUALIFIERS for w in words)


@dataclass(frozen=True)
class DeclaredTool:
    """A tool as the inventory declares it (or not) for one system."""

    name: str
    access: Access
    permissions: tuple[str, ...] = ()
    why: str = ""

    @property
    def writes(self) -> bool:
        return self.access != "read-only"


def _declared(tool: Tool) -> DeclaredTool:
    permissions = tuple(tool.permissions)
    if not permissions:
        why = "the inventory declares no permissions for it: counted as writing"
        return DeclaredTool(tool.name, "unknown", (), why)
    writes = any(permission_writes(p) for p in permissions)
    return DeclaredTool(tool.name, "writing" if writes else "read-only", permissions)


@dataclass
class ToolInventory:
    """The tools of the incident's systems, by system and canonical name."""

    tools: dict[str | None, dict[str, DeclaredTool]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, systems: list[str]) -> ToolInventory:
        rows = session.scalars(select(System).where(System.id.in_(systems)))
        return cls(
            {
                row.id: {tool_key(t.name): _declared(t) for t in row.parsed.components.tools}
                for row in rows
            }
        )

    def tool(self, system_id: str | None, name: str) -> DeclaredTool:
        found = self.tools.get(system_id, {}).get(tool_key(name))
        if found is not None:
            return found
        why = "the inventory does not declare it: counted as writing"
        return DeclaredTool(name, "unknown", (), why)
