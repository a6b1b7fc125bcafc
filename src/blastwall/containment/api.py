"""Containment routes: actions under an incident, approvals, reverts, snapshots, and the
control state that guards read (plain and as a server-sent events stream)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission
from blastwall.containment import affected as hunt
from blastwall.containment import approvals, flows, held, service
from blastwall.containment.models import ContainmentAction
from blastwall.containment.policy import Policy, load_policy
from blastwall.containment.schemas import (
    ActionDecision,
    ActionIn,
    ActionOut,
    ActionState,
    ControlState,
    QuarantineIn,
    QuarantineOut,
    RevertIn,
    SnapshotOut,
    ToolApprovalIn,
    ToolApprovalOut,
    ToolDecisionIn,
    UndeclaredIn,
    UndeclaredOut,
)
from blastwall.containment.stream import ControlHub
from blastwall.containment.verify import GuardInfo
from blastwall.db import after_commit, utcnow
from blastwall.dependencies import (
    IncidentId,
    ItemId,
    PageDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    audit_object,
)
from blastwall.incidents import service as incidents
from blastwall.inventory.service import get_system
from blastwall.pagination import Page

router = APIRouter(prefix="/incidents", tags=["containment"])
controls_router = APIRouter(prefix="/controls", tags=["containment"])

SystemQuery = Annotated[
    str, Query(max_length=100, description="The AI system's id, as in the inventory.")
]


def _policy(settings: SettingsDep) -> Policy:
    return load_policy(settings.containment_policy)


def notify_guards(request: Request, session: Session, action: ContainmentAction) -> None:
    """Tell the connected guards that the action's system changed, once the change is
    committed (a guard told earlier would read the controls before it)."""
    hub: ControlHub = request.app.state.control_hub
    system_id, expires_at = action.system_id, action.expires_at
    after_commit(session, lambda: hub.notify(system_id, expires_at=expires_at))


@router.post(
    "/{incident_id}/actions",
    response_model=ActionOut,
    status_code=201,
    responses={202: {"model": ActionOut, "description": "Waiting for approval."}},
)
def request_action(
    request: Request,
    response: Response,
    incident_id: IncidentId,
    body: ActionIn,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> ActionOut:
    """Apply a control to one of the incident's AI systems: 201 when applied (the policy
    pre-authorises it for your role at the incident's severity), 202 when it waits for a
    second person's approval. The `message` says which, and what to do next."""
    action, message = flows.request_action(
        session,
        incident_id=incident_id,
        data=body,
        actor=principal,
        policy=_policy(settings),
        snapshot_interactions=settings.containment_snapshot_interactions,
        grace_seconds=settings.containment_grace_seconds,
    )
    audit_object(request, f"incident:{incident_id}/action:{action.id}")
    if action.state == ActionState.active:
        notify_guards(request, session, action)
    else:
        response.status_code = 202
    return service.action_out(action, message)


@router.get("/{incident_id}/actions", response_model=Page[ActionOut])
def list_actions(
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    state: Annotated[ActionState | None, Query()] = None,
) -> Page[ActionOut]:
    """The incident's containment actions, oldest first."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    rows, next_cursor = service.list_actions(
        session,
        incident_id=incident.id,
        limit=page.limit,
        cursor=page.cursor,
        state=state.value if state else None,
    )
    return Page(items=[service.action_out(r) for r in rows], next=next_cursor)


@router.get("/{incident_id}/actions/{action_id}", response_model=ActionOut)
def get_action(
    incident_id: IncidentId, action_id: ItemId, session: SessionDep, principal: PrincipalDep
) -> ActionOut:
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    return service.action_out(
        service.get_action(session, incident_id=incident.id, action_id=action_id)
    )


@router.post("/{incident_id}/actions/{action_id}/approve", response_model=ActionOut)
def approve_action(
    request: Request,
    incident_id: IncidentId,
    action_id: ItemId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    body: ActionDecision | None = None,
) -> ActionOut:
    """Approve an action that waits (roles of the policy's `approvers`, not the requester);
    it is applied at once."""
    action = flows.approve_action(
        session,
        incident_id=incident_id,
        action_id=action_id,
        actor=principal,
        policy=_policy(settings),
        snapshot_interactions=settings.containment_snapshot_interactions,
        note=body.note if body else "",
    )
    notify_guards(request, session, action)
    return service.action_out(action, f"Approved and applied by {principal.name}.")


@router.post("/{incident_id}/actions/{action_id}/reject", response_model=ActionOut)
def reject_action(
    incident_id: IncidentId,
    action_id: ItemId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    body: ActionDecision | None = None,
) -> ActionOut:
    """Refuse an action that waits for approval; nothing is changed on the system."""
    action = flows.reject_action(
        session,
        incident_id=incident_id,
        action_id=action_id,
        actor=principal,
        policy=_policy(settings),
        note=body.note if body else "",
    )
    return service.action_out(action)


@router.post("/{incident_id}/actions/{action_id}/revert", response_model=ActionOut)
def revert_action(
    request: Request,
    incident_id: IncidentId,
    action_id: ItemId,
    body: RevertIn,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> ActionOut:
    """Lift an active control (a new snapshot and timeline entry record it), or withdraw a
    request that still waits for approval."""
    action = flows.revert_action(
        session,
        incident_id=incident_id,
        action_id=action_id,
        actor=principal,
        reason=body.reason,
        snapshot_interactions=settings.containment_snapshot_interactions,
    )
    notify_guards(request, session, action)
    return service.action_out(action)


@router.get("/{incident_id}/snapshots/{snapshot_id}", response_model=SnapshotOut)
def get_snapshot(
    incident_id: IncidentId, snapshot_id: ItemId, session: SessionDep, principal: PrincipalDep
) -> SnapshotOut:
    """The evidence preserved before a containment change: control state and recent
    interactions (their content needs a role that may see content)."""
    principal.require(Permission.see_content)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    row = service.get_snapshot(session, incident_id=incident.id, snapshot_id=snapshot_id)
    return SnapshotOut.model_validate(row, from_attributes=True)


Since = Annotated[
    AwareDatetime | None,
    Query(description="From (with a timezone); default: a day before detection."),
]
Until = Annotated[AwareDatetime | None, Query(description="Until; default: now.")]
Tool = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Only calls of this tool, in any spelling of its name (issue-refund, "
        "issue_refund).",
    ),
]
Pattern = Annotated[
    str | None,
    Query(
        max_length=500,
        description="The conversations with an interaction whose content matches this regex.",
    ),
]


@router.get(
    "/{incident_id}/affected",
    response_model=hunt.Affected,
    responses={200: {"content": {"text/csv": {}}}},
)
def affected(
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    since: Since = None,
    until: Until = None,
    tool: Tool = None,
    pattern: Pattern = None,
    everything: Annotated[
        bool,
        Query(
            alias="all",
            description="All the systems' traffic, not only the conversations of the signals.",
        ),
    ] = False,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> hunt.Affected | Response:
    """Conversations, users, tool calls and side effects the incident touched on its systems
    in its time range (`blastwall affected`), as JSON or CSV: the conversations its signals
    name, or those matching `pattern`, or with `all` everything. JSON heads with the totals
    per tool: side effects (successful calls of writing tools) and the sums of their numeric
    arguments per currency."""
    found = hunt.find_affected(
        session,
        incident_id=incident_id,
        principal=principal,
        since=since,
        until=until,
        tool=tool,
        pattern=pattern,
        everything=everything,
        limit=limit,
    )
    if format == "csv":
        return Response(hunt.to_csv(found), media_type="text/csv")
    return found


@router.post("/{incident_id}/affected/quarantine", response_model=QuarantineOut)
def quarantine_affected(
    incident_id: IncidentId, body: QuarantineIn, session: SessionDep, principal: PrincipalDep
) -> QuarantineOut:
    """Mark the outputs of the affected interactions (same filters as GET) quarantined
    under the incident; a timeline entry lists them."""
    found = hunt.find_affected(
        session,
        incident_id=incident_id,
        principal=principal,
        since=body.since,
        until=body.until,
        tool=body.tool,
        pattern=body.pattern,
        everything=body.all,
        limit=body.limit,
    )
    marked = hunt.quarantine_affected(
        session, affected=found, principal=principal, reason=body.reason
    )
    return QuarantineOut(marked=marked, affected=len(found.interactions))


@controls_router.get("", response_model=ControlState)
def control_state(
    system: SystemQuery, session: SessionDep, principal: PrincipalDep
) -> ControlState:
    """The controls in force on a system: who set each, when, why, under which incident,
    until when."""
    principal.require(Permission.read)
    return service.control_state(session, system_id=system, reader=principal)


def _guard_info(request: Request, principal: str) -> GuardInfo:
    """What a guard says of itself in `X-Blastwall-Guard: version=2; fail_mode=closed;
    agent=...` (a guard older than version 2 sends nothing)."""
    said: dict[str, str] = {}
    for part in request.headers.get("x-blastwall-guard", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            said[key] = unquote(value)[:200]
    return GuardInfo(
        principal=principal,
        version=said.get("version"),
        fail_mode=said.get("fail_mode"),
        agent=said.get("agent"),
        connected_at=utcnow(),
    )


@controls_router.post("/undeclared", response_model=UndeclaredOut)
def report_undeclared(
    request: Request, body: UndeclaredIn, session: SessionDep, principal: PrincipalDep
) -> UndeclaredOut:
    """A guard reports a tool or agent its application uses that the inventory does not
    declare for the system (any role may: guards hold read tokens). It becomes a warning
    signal of kind `undeclared_tool` or `undeclared_agent` (shadow capability), once per
    system and name; later reports of the same name count as repeats."""
    principal.require(Permission.read)
    row, new = flows.report_undeclared(session, data=body, actor=principal)
    audit_object(request, f"signal:{row.id}")
    return UndeclaredOut(signal_id=row.id, new=new)


@controls_router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def control_stream(
    request: Request, system: SystemQuery, session: SessionDep, principal: PrincipalDep
) -> StreamingResponse:
    """Server-sent events for guards: an `event: state` with the whole control state first
    (the resynchronisation after every reconnect), then one at each change; `id` is the
    state's revision; a keep-alive comment when nothing changes."""
    principal.require(Permission.read)
    get_system(session, system_id=system)
    hub: ControlHub = request.app.state.control_hub
    return StreamingResponse(
        hub.stream(system, _guard_info(request, principal.name), principal.token_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@controls_router.post("/approvals", response_model=ToolApprovalOut, status_code=201)
def request_tool_approval(
    request: Request, body: ToolApprovalIn, session: SessionDep, principal: PrincipalDep
) -> ToolApprovalOut:
    """A guard asks a person to approve one tool call (while `require_approval` is in force
    for the tool); it then polls the approval until it is decided or expires."""
    row = approvals.request_tool_approval(session, data=body, principal=principal)
    audit_object(request, f"approval:{row.id}")
    return service.tool_approval_out(row, show_arguments=True)


@controls_router.get("/approvals", response_model=Page[ToolApprovalOut])
def list_tool_approvals(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    system: Annotated[str | None, Query(max_length=100)] = None,
    pending: Annotated[bool, Query(description="Only those still waiting.")] = False,
) -> Page[ToolApprovalOut]:
    """Tool calls asking for approval, newest first (arguments shown to roles that see
    content)."""
    principal.require(Permission.read)
    rows, next_cursor = service.list_tool_approvals(
        session, limit=page.limit, cursor=page.cursor, system_id=system, pending=pending
    )
    show = principal.can(Permission.see_content)
    return Page(
        items=[service.tool_approval_out(r, show_arguments=show) for r in rows], next=next_cursor
    )


@controls_router.get("/approvals/{approval_id}", response_model=ToolApprovalOut)
def get_tool_approval(
    approval_id: ItemId, session: SessionDep, principal: PrincipalDep
) -> ToolApprovalOut:
    principal.require(Permission.read)
    row = service.get_tool_approval(session, approval_id=approval_id)
    return service.tool_approval_out(row, show_arguments=principal.can(Permission.see_content))


@controls_router.post("/approvals/{approval_id}/decide", response_model=ToolApprovalOut)
def decide_tool_approval(
    approval_id: ItemId,
    body: ToolDecisionIn,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> ToolApprovalOut:
    """Approve or deny a waiting tool call (the policy's approvers)."""
    row = approvals.decide_tool_approval(
        session, approval_id=approval_id, decision=body, actor=principal, policy=_policy(settings)
    )
    return service.tool_approval_out(row, show_arguments=True)


@controls_router.post("/held", response_model=held.HeldOut, status_code=201)
def hold_output(body: held.HeldIn, session: SessionDep, principal: PrincipalDep) -> held.HeldOut:
    """A guard hands over an output it held back under `quarantine_output`."""
    row, incident_id = held.hold(session, data=body, principal=principal)
    return held.to_out(row, incident_id, full=True)


@controls_router.get("/held", response_model=Page[held.HeldOut])
def list_held_outputs(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    system: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[str | None, Query(pattern="^(held|released|discarded)$")] = None,
) -> Page[held.HeldOut]:
    """Held outputs, newest first; their text masked of personal data for roles that do not
    see content."""
    principal.require(Permission.read)
    rows, following = held.list_held(
        session,
        limit=page.limit,
        cursor=page.cursor,
        system_id=system,
        state=state,
        reader=principal,
    )
    full = principal.can(Permission.see_content)
    return Page(items=[held.to_out(r, i, full=full) for r, i in rows], next=following)


@controls_router.post("/held/{held_id}/decide", response_model=held.HeldOut)
def decide_held_output(
    held_id: ItemId,
    body: held.HeldDecision,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> held.HeldOut:
    """Release (the application may deliver it) or discard a held output."""
    row, incident_id = held.decide(
        session,
        held_id=held_id,
        decision=body,
        actor=principal,
        policy=_policy(settings),
    )
    return held.to_out(row, incident_id, full=True)
