"""What every containment change does around the change itself: the evidence preserved
first, the connectors acting on it, and the end of an action."""

from __future__ import annotations

from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal
from blastwall.containment import service
from blastwall.containment.models import ContainmentAction
from blastwall.containment.schemas import ActionState
from blastwall.db import utcnow
from blastwall.errors import PluginError
from blastwall.incidents import service as incidents
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.models import Incident
from blastwall.plugins import containment_connectors

FINISHED = (Status.closed, Status.merged, Status.declined)
PURPOSES = {"apply": "applying", "revert": "reverting", "expiry": "the expiry of"}


def connectors(
    action: ContainmentAction, *, revert_reason: str | None = None
) -> list[dict[str, str]]:
    record = service.action_record(action)
    verb = "lift" if revert_reason is not None else "apply"
    results = []
    for connector in containment_connectors():
        if not connector.supports(action.control):
            continue
        try:
            if revert_reason is None:
                line = connector.apply(record)
            else:
                line = connector.revert(record, reason=revert_reason)
        except Exception as exc:
            raise PluginError(
                f"The containment connector '{connector.name}' failed to {verb} "
                f"{action.control} on {action.system_id}: {exc!r}. Nothing was changed; fix "
                "or remove the connector's plugin, then retry."
            ) from exc
        results.append({"connector": connector.name, "result": str(line)})
    return results


def preserve(
    session: Session,
    incident: Incident,
    action: ContainmentAction,
    *,
    purpose: str,
    actor: Principal,
    interactions: int,
) -> int:
    snapshot = service.take_snapshot(
        session, action=action, purpose=purpose, taken_by=actor.name, interactions=interactions
    )
    count = len(snapshot.content["recent_interactions"])
    incidents.record_entry(
        session,
        incident=incident,
        kind="evidence_snapshot",
        actor=actor,
        text=f"Evidence preserved before {PURPOSES[purpose]} {action.describe()}: "
        f"control state and {count} recent interaction(s), sha256 {snapshot.sha256[:16]}…",
        data={
            "snapshot_id": snapshot.id,
            "sha256": snapshot.sha256,
            "action_id": action.id,
            "system_id": action.system_id,
            "interactions": count,
        },
    )
    return snapshot.id


def end(action: ContainmentAction, state: ActionState, actor: Principal, reason: str) -> None:
    action.state = state
    action.ended_by = actor.name
    action.ended_at = utcnow()
    action.end_reason = reason or None
