"""The systems pages: the inventory, and one system with what runs in it, what is applied to
it now, what changed, its open incidents and what its telemetry shows.

Everything is read through the services the API's routers call, so that the roles and the
restricted-incident rules are theirs: open incidents come from `incidents.service`
(`list_incidents` with the person), the controls in force from `containment.service`
(`control_state` with the person as reader, which hides the incident of a control the person
may not see)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment import service as containment
from blastwall.dependencies import SessionDep
from blastwall.incidents import service as incidents
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.schemas import IncidentOut
from blastwall.inventory import service as inventory
from blastwall.inventory import versions
from blastwall.inventory.schemas import SystemSpec, SystemType
from blastwall.telemetry import service as telemetry
from blastwall.telemetry.capture import NEEDS_CONTENT
from blastwall.telemetry.capture import state_of as content_capture
from blastwall.telemetry.schemas import ContentCaptureOut
from blastwall.web.deps import UiDep
from blastwall.web.render import page

router = APIRouter()
PAGE = 50
CHANGES = 20
OPEN = (Status.triage, Status.investigating, Status.contained, Status.recovering)
"""The statuses of an incident still being worked on (as the comms cadence counts them)."""
OPEN_SCAN = 1000
"""At most this many open incidents of each status are counted on the inventory page."""


@dataclass(frozen=True)
class Health:
    """What the telemetry shows of a system: whether its model calls carry their content,
    and when its last span was seen."""

    capture: ContentCaptureOut
    last_span: datetime | None
    content_policy: str

    @property
    def blind(self) -> bool:
        """Content capture is off under a policy that wants the content: the detectors
        cannot see what goes in or out."""
        return self.capture.state == "off" and self.content_policy in NEEDS_CONTENT


def health(session: Session, *, system_id: str, spec: SystemSpec) -> Health:
    last, _ = telemetry.list_interactions(
        session, where=telemetry.InteractionFilter(system_id=system_id), limit=1
    )
    return Health(
        capture=content_capture(session, system_id=system_id),
        last_span=last[0].start_time if last else None,
        content_policy=spec.telemetry.content_policy.value,
    )


def open_incidents(
    session: Session, *, principal: Principal, system_id: str | None = None, limit: int = PAGE
) -> list[IncidentOut]:
    """The open incidents the person may see (of one system, or of all), newest first."""
    found = []
    for status in OPEN:
        rows, _ = incidents.list_incidents(
            session, principal=principal, limit=limit, status=status.value, system_id=system_id
        )
        found += rows
    found.sort(key=lambda i: i.id, reverse=True)
    return incidents.describe(session, found[:limit])


@router.get("/systems")
def systems_page(
    request: Request,
    session: SessionDep,
    ui: UiDep,
    type: Annotated[SystemType | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The inventory, PAGE systems at a time in id order, each with its open incidents (those
    the person may see) and its telemetry health."""
    rows, next_cursor = inventory.list_systems(
        session, limit=PAGE, cursor=cursor, type=type.value if type else None
    )
    counts: Counter[str] = Counter()
    for incident in open_incidents(session, principal=ui.principal, limit=OPEN_SCAN):
        counts.update(incident.systems)
    kept = {"type": type.value} if type else {}
    return page(
        request,
        "systems/list.html",
        systems=[
            {
                "row": row,
                "open": counts[row.id],
                "health": health(session, system_id=row.id, spec=row.parsed),
            }
            for row in rows
        ],
        types=[t.value for t in SystemType],
        chosen_type=type.value if type else "",
        next_url=f"/ui/systems?{urlencode({**kept, 'cursor': next_cursor})}"
        if next_cursor
        else None,
        first_url=f"/ui/systems?{urlencode(kept)}" if cursor else None,
    )


def components(session: Session, spec: SystemSpec, kind: str) -> list[dict[str, Any]]:
    """The system's prompts (`kind` "prompt") or models ("model"), each with every version
    it has had, newest first."""
    return [
        {
            "item": item,
            "versions": list(
                reversed(versions.known(session, spec=spec, kind=kind, component_id=item.id))
            ),
        }
        for item in versions.declared(spec, kind)
    ]


@router.get("/systems/{system_id}")
def system_page(request: Request, system_id: str, session: SessionDep, ui: UiDep) -> Response:
    """One system: owner, risk, models, prompts and tools, the controls in force, recent
    changes, open incidents and telemetry health."""
    row = inventory.get_system(session, system_id=system_id)
    spec = row.parsed
    principal = ui.principal
    principal.require(Permission.read)
    changes, _ = inventory.list_changes(session, limit=CHANGES, system_id=row.id)
    keys = (
        telemetry.list_keys(session, system_id=row.id)
        if principal.can(Permission.manage_tokens)
        else None
    )
    return page(
        request,
        "systems/detail.html",
        system=row,
        spec=spec,
        models=components(session, spec, "model"),
        prompts=components(session, spec, "prompt"),
        controls=containment.control_state(session, system_id=row.id, reader=principal),
        changes=changes,
        incidents=open_incidents(session, principal=principal, system_id=row.id),
        health=health(session, system_id=row.id, spec=spec),
        keys=keys,
    )
