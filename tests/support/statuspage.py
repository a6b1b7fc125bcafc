"""The status page in tests: the components of the example file, updates published as the
updates part publishes them, and the messages it hands to the notifications, recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.comms.service import statuspage as pages
from blastwall.pipeline import StatusMessage, UpdatePublished
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "status-page" / "status-page.yaml"
AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def apply_example(session: Session, *, now: datetime = AT) -> None:
    pages.apply_components(session, spec=pages.load_spec(EXAMPLE), now=now)


def published(**changes: Any) -> UpdatePublished:
    """An update to `customers` of incident 987654321 on the support chatbot, as the updates
    part publishes it; `changes` replace its fields."""
    values: dict[str, Any] = {
        "update_id": 1,
        "incident_id": 987654321,
        "audience": "customers",
        "channels": ("status_page", "email"),
        "public": True,
        "restricted": False,
        "system_ids": ("support-chatbot",),
        "title": "Support assistant answers slowly",
        "body": "What happened: answers take minutes.\nWhat we don't know yet: none",
        "sections": {"what_happened": "answers take minutes"},
        "phase": "investigating",
        "impact": "major",
        "component_status": "major_outage",
        "published_at": AT,
        "published_by": "casey",
        "next_update_at": None,
    }
    values.update(changes)
    return UpdatePublished(**values)


@dataclass
class Outbox:
    """The StatusMessage events published, in order (subscribed as the notifications part
    subscribes its step)."""

    messages: list[StatusMessage] = field(default_factory=list)

    def subscribe(self) -> Outbox:
        pipeline.subscribe(StatusMessage, self._record)
        return self

    def _record(self, session: Session, event: StatusMessage) -> None:
        self.messages.append(event)

    def to(self, address: str) -> list[StatusMessage]:
        return [m for m in self.messages if m.address == address]
