"""What the status page shows, in the shape of Atlassian Statuspage's public read API
(`/api/v2/summary.json` and its siblings), so that the consumers written for it work, and as
one HTML page. The documents hold the page's own ids and the components' declared ones:
no incident number, and no system id unless its component makes them public.

`Feed.read` takes everything the page shows from the database once; the documents and the
page are made from that, for the server's routes and for `blastwall status export` alike."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.orm import Session

from blastwall.comms.models.statuspage import (
    ComponentStatus,
    Impact,
    Phase,
    StatusComponent,
    StatusIncident,
    StatusIncidentUpdate,
    StatusKind,
)
from blastwall.comms.service import statuspage as pages
from blastwall.comms.service.statuspage import PageInfo

__all__ = ["DOCUMENTS", "Feed", "iso"]

PAGE_ID = "blastwall"
DOCUMENTS = (
    "summary.json",
    "status.json",
    "components.json",
    "incidents.json",
    "incidents/unresolved.json",
    "scheduled-maintenances.json",
    "scheduled-maintenances/upcoming.json",
    "scheduled-maintenances/active.json",
)
"""The documents of the read API, by their path under api/v2/."""
INDICATORS = {
    ComponentStatus.operational: ("none", "All Systems Operational"),
    ComponentStatus.under_maintenance: ("maintenance", "Service Under Maintenance"),
    ComponentStatus.degraded_performance: ("minor", "Minor Service Outage"),
    ComponentStatus.partial_outage: ("major", "Partial System Outage"),
    ComponentStatus.major_outage: ("critical", "Major System Outage"),
}
IMPACT_STATUS = {
    Impact.minor: ComponentStatus.degraded_performance,
    Impact.major: ComponentStatus.partial_outage,
    Impact.critical: ComponentStatus.major_outage,
}
"""The page's status an unresolved incident's impact stands for, whatever its components."""
LABELS = {status: status.value.replace("_", " ").capitalize() for status in ComponentStatus}


def iso(value: datetime | None) -> str | None:
    """A time as Statuspage writes it: UTC, milliseconds, `Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "group"


@dataclass(frozen=True)
class Feed:
    """Everything the page shows at `now`."""

    page: PageInfo
    now: datetime
    components: Sequence[StatusComponent]
    unresolved: Sequence[StatusIncident]
    recent: Sequence[StatusIncident]
    maintenances: Sequence[StatusIncident]
    updates: dict[str, list[StatusIncidentUpdate]]

    @classmethod
    def read(cls, session: Session, *, page: PageInfo, now: datetime) -> Feed:
        unresolved = pages.open_incidents(session)
        recent = pages.recent_incidents(session, now=now)
        maintenances = pages.maintenances(session, now=now)
        ids = {row.id for row in [*unresolved, *recent, *maintenances]}
        return cls(
            page=page,
            now=now,
            components=pages.components(session),
            unresolved=unresolved,
            recent=recent,
            maintenances=maintenances,
            updates=pages.updates_of(session, ids=sorted(ids)),
        )

    # --- state -------------------------------------------------------------------------

    def in_force(self, row: StatusIncident) -> bool:
        return pages.maintenance_phase(row, self.now) is Phase.in_progress

    def component_status(self, component_id: str) -> ComponentStatus:
        """The worst that an unresolved incident, or a maintenance in force, says of it."""
        said = [r.component_status for r in self.unresolved if component_id in r.component_ids]
        said += [
            ComponentStatus.under_maintenance
            for r in self.maintenances
            if component_id in r.component_ids and self.in_force(r)
        ]
        return pages.worst(said)

    def page_status(self) -> ComponentStatus:
        said = [self.component_status(c.id) for c in self.components]
        said += [IMPACT_STATUS[r.impact] for r in self.unresolved if r.impact in IMPACT_STATUS]
        return pages.worst(said)

    def updated_at(self) -> datetime:
        times = [c.updated_at for c in self.components]
        times += [r.updated_at for r in [*self.recent, *self.unresolved, *self.maintenances]]
        return max(times, default=self.now)

    # --- documents ---------------------------------------------------------------------

    def page_doc(self) -> dict[str, Any]:
        return {
            "id": PAGE_ID,
            "name": self.page.name,
            "url": self.page.url,
            "time_zone": self.page.time_zone,
            "updated_at": iso(self.updated_at()),
        }

    def status_doc(self) -> dict[str, str]:
        indicator, description = INDICATORS[self.page_status()]
        return {"indicator": indicator, "description": description}

    @cached_property
    def component_docs(self) -> list[dict[str, Any]]:
        """The components, then their groups (as Statuspage lists a group: a component with
        `group: true` naming its members)."""
        groups: dict[str, list[StatusComponent]] = {}
        for component in self.components:
            if component.group:
                groups.setdefault(component.group, []).append(component)
        docs: list[dict[str, Any]] = []
        for position, component in enumerate(self.components, start=1):
            doc: dict[str, Any] = {
                "id": component.id,
                "name": component.name,
                "status": self.component_status(component.id).value,
                "created_at": iso(component.created_at),
                "updated_at": iso(component.updated_at),
                "position": position,
                "description": component.description,
                "showcase": True,
                "start_date": None,
                "group_id": f"group-{_slug(component.group)}" if component.group else None,
                "page_id": PAGE_ID,
                "group": False,
                "only_show_if_degraded": False,
            }
            if component.show_systems:
                doc["systems"] = list(component.systems)
            docs.append(doc)
        for offset, (name, members) in enumerate(groups.items(), start=len(docs) + 1):
            docs.append(
                {
                    "id": f"group-{_slug(name)}",
                    "name": name,
                    "status": pages.worst([self.component_status(c.id) for c in members]).value,
                    "created_at": iso(min(c.created_at for c in members)),
                    "updated_at": iso(max(c.updated_at for c in members)),
                    "position": offset,
                    "description": None,
                    "showcase": False,
                    "start_date": None,
                    "group_id": None,
                    "page_id": PAGE_ID,
                    "group": True,
                    "only_show_if_degraded": False,
                    "components": [c.id for c in members],
                }
            )
        return docs

    def incident_doc(self, row: StatusIncident) -> dict[str, Any]:
        names = {c.id: c.name for c in self.components}
        affected = [c for c in self.component_docs if c["id"] in row.component_ids]
        maintenance = row.kind is StatusKind.maintenance
        status = pages.maintenance_phase(row, self.now) if maintenance else row.status
        resolved_at = row.resolved_at
        if maintenance and status is Phase.completed:
            resolved_at = row.scheduled_until
        updates = [
            {
                "id": update.id,
                "status": update.status.value,
                "body": update.body,
                "incident_id": row.id,
                "created_at": iso(update.created_at),
                "updated_at": iso(update.created_at),
                "display_at": iso(update.created_at),
                "affected_components": [
                    {
                        "code": cid,
                        "name": names[cid],
                        "old_status": None,
                        "new_status": update.component_status.value,
                    }
                    for cid in row.component_ids
                    if cid in names
                ],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
            for update in self.updates.get(row.id, [])
        ]
        doc: dict[str, Any] = {
            "id": row.id,
            "name": row.name,
            "status": status.value,
            "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at),
            "monitoring_at": iso(row.monitoring_at),
            "resolved_at": iso(resolved_at),
            "impact": row.impact.value,
            "shortlink": f"{self.page.url}#incident-{row.id}",
            "started_at": iso(row.scheduled_for if maintenance else row.created_at),
            "page_id": PAGE_ID,
            "incident_updates": updates,
            "components": affected,
        }
        if maintenance:
            doc["scheduled_for"] = iso(row.scheduled_for)
            doc["scheduled_until"] = iso(row.scheduled_until)
        return doc

    def documents(self) -> dict[str, dict[str, Any]]:
        """Every document of the read API, by its path under api/v2/."""
        page = self.page_doc()
        unresolved = [self.incident_doc(r) for r in self.unresolved]
        maintenances = [self.incident_doc(r) for r in self.maintenances]
        upcoming = [m for m in maintenances if m["status"] == Phase.scheduled.value]
        active = [m for m in maintenances if m["status"] == Phase.in_progress.value]
        components = self.component_docs
        status = self.status_doc()
        return {
            "summary.json": {
                "page": page,
                "components": components,
                "incidents": unresolved,
                "scheduled_maintenances": active + upcoming,
                "status": status,
            },
            "status.json": {"page": page, "status": status},
            "components.json": {"page": page, "components": components},
            "incidents.json": {
                "page": page,
                "incidents": [self.incident_doc(r) for r in self.recent],
            },
            "incidents/unresolved.json": {"page": page, "incidents": unresolved},
            "scheduled-maintenances.json": {"page": page, "scheduled_maintenances": maintenances},
            "scheduled-maintenances/upcoming.json": {
                "page": page,
                "scheduled_maintenances": upcoming,
            },
            "scheduled-maintenances/active.json": {
                "page": page,
                "scheduled_maintenances": active,
            },
        }

    # --- the HTML page -----------------------------------------------------------------

    def html(self, *, api_base: str, subscribe: str) -> str:
        """The page as HTML (no script); `api_base`: where its JSON documents are linked;
        `subscribe`: where its subscription form posts."""
        docs = self.documents()
        summary = docs["summary.json"]
        ungrouped = [c for c in summary["components"] if not c["group"] and not c["group_id"]]
        groups = [
            (g, [c for c in summary["components"] if c["group_id"] == g["id"]])
            for g in summary["components"]
            if g["group"]
        ]
        history: dict[str, list[dict[str, Any]]] = {}
        for incident in docs["incidents.json"]["incidents"]:
            history.setdefault(incident["created_at"][:10], []).append(incident)
        return _template().render(
            page=summary["page"],
            status=summary["status"],
            ungrouped=ungrouped,
            groups=groups,
            unresolved=summary["incidents"],
            maintenances=summary["scheduled_maintenances"],
            history=history,
            labels={s.value: label for s, label in LABELS.items()},
            api_base=api_base,
            subscribe=subscribe,
            history_days=pages.HISTORY_DAYS,
            generated=iso(self.now),
        )


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent.parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("statuspage.html")
