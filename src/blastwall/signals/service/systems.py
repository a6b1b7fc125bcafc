"""The inventory system a name in a signal stands for."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.inventory.models import System


class SystemMatcher:
    """Finds the inventory system a name stands for: its id, or one of the service names in
    its `telemetry.service_names`, case-insensitively. Loads the service names once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._service_names: dict[str, str] | None = None
        self._found: dict[str, str | None] = {}

    def _names(self) -> dict[str, str]:
        if self._service_names is None:
            names: dict[str, str] = {}
            for row in self.session.scalars(select(System).order_by(System.id)):
                for name in row.parsed.telemetry.service_names:
                    names.setdefault(name.strip().lower(), row.id)
            self._service_names = names
        return self._service_names

    def __call__(self, name: str) -> str | None:
        key = name.strip().lower()
        if not key:
            return None
        if key not in self._found:
            found = self.session.scalar(select(System.id).where(System.id == key))
            self._found[key] = found if found is not None else self._names().get(key)
        return self._found[key]
