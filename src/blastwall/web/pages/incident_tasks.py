"""The incident page's tasks and post-incident action items: adding one, and moving one
to another state (the API's `TaskCreate` and `TaskUpdate`, through `incidents.tasks`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from blastwall.dependencies import IncidentId, ItemId, audit_object
from blastwall.incidents import tasks as task_service
from blastwall.incidents.schemas import TaskCreate, TaskUpdate
from blastwall.web.deps import ActionDep

router = APIRouter()
PAGE = 500
"""Tasks the page lists (the API's largest page): an incident has far fewer."""


@router.post("/incidents/{incident_id}/tasks")
def create_task(
    request: Request,
    incident_id: IncidentId,
    act: ActionDep,
    title: Annotated[str, Form(max_length=500)] = "",
    kind: Annotated[str, Form(max_length=40)] = "task",
    owner: Annotated[str, Form(max_length=200)] = "",
    due: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Add a task or action item; an empty owner or due date is none."""

    def create() -> str:
        fields = {"title": title, "kind": kind, "owner": owner.strip() or None}
        task = TaskCreate.model_validate({**fields, "due": due.strip() or None})
        row = task_service.create_task(
            act.session, incident_id=incident_id, task=task, actor=act.principal
        )
        audit_object(request, f"incident:{incident_id}/task:{row.id}")
        return f"/ui/incidents/{incident_id}"

    return act.run(create)


@router.post("/incidents/{incident_id}/tasks/{task_id}")
def update_task(
    request: Request,
    incident_id: IncidentId,
    task_id: ItemId,
    act: ActionDep,
    state: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Move a task to another state (open, in progress, done, cancelled)."""

    def update() -> str:
        change = TaskUpdate.model_validate({"state": state})
        task_service.update_task(
            act.session,
            incident_id=incident_id,
            task_id=task_id,
            update=change,
            actor=act.principal,
        )
        audit_object(request, f"incident:{incident_id}/task:{task_id}")
        return f"/ui/incidents/{incident_id}"

    return act.run(update)
