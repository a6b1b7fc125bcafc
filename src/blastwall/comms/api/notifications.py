"""Notification routes, for admins: the channels, and the outbox with each message's tries
(the dead-letter list is `?state=dead`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from blastwall.auth.roles import Permission
from blastwall.comms.delivery import send_test
from blastwall.comms.models.notifications import Attempt, Channel, OutboxMessage, OutboxState
from blastwall.comms.service import notifications as service
from blastwall.comms.service import outbox
from blastwall.db import Database, utcnow
from blastwall.dependencies import ItemId, PageDep, PrincipalDep, SessionDep, audit_object, get_db
from blastwall.pagination import Page
from blastwall.plugins import notifiers

__all__ = ["channels_router", "router"]

channels_router = APIRouter(tags=["notifications"])
router = APIRouter(tags=["notifications"])

ChannelName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
]


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ChannelName
    kind: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    settings: dict[str, Any] = Field(
        default_factory=dict, description="The notifier's settings (docs/notifications.md)."
    )
    public: bool = Field(
        default=False,
        description="The channel reaches people beyond the responders: no restricted "
        "incident is ever notified on it.",
    )
    enabled: bool = True
    replace: bool = Field(default=False, description="Replace the channel of that name.")


class ChannelOut(BaseModel):
    name: str
    kind: str
    settings: dict[str, Any] = Field(description="Secrets shown as ***.")
    public: bool
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class ChannelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class ReceiptOut(BaseModel):
    ok: bool
    status: str
    code: int | None
    detail: str


class AttemptOut(ReceiptOut):
    at: datetime
    seconds: float


class NotificationOut(BaseModel):
    id: int
    key: str
    channel: str
    event: str
    incident_id: int | None
    subject: str
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class NotificationDetail(NotificationOut):
    text: str
    tries: list[AttemptOut]


def channel_out(row: Channel) -> ChannelOut:
    return ChannelOut(
        name=row.name,
        kind=row.kind,
        settings=service.shown_settings(row),
        public=row.public,
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def notification_out(row: OutboxMessage) -> NotificationOut:
    return NotificationOut.model_validate(row, from_attributes=True)


def attempt_out(row: Attempt) -> AttemptOut:
    return AttemptOut.model_validate(row, from_attributes=True)


@channels_router.get("/notification-channels", response_model=list[ChannelOut])
def list_channels(session: SessionDep, principal: PrincipalDep) -> list[ChannelOut]:
    """Every channel, its secrets shown as ***."""
    principal.require(Permission.manage_notifications)
    return [channel_out(r) for r in service.list_channels(session)]


@channels_router.post("/notification-channels", response_model=ChannelOut, status_code=201)
def add_channel(
    request: Request, body: ChannelIn, session: SessionDep, principal: PrincipalDep
) -> ChannelOut:
    """Add a channel (or replace one, with `replace`); its notifier checks the settings."""
    principal.require(Permission.manage_notifications)
    row = service.add_channel(
        session,
        name=body.name,
        kind=body.kind,
        settings=body.settings,
        notifiers=notifiers(),
        actor=principal.name,
        public=body.public,
        enabled=body.enabled,
        replace=body.replace,
    )
    audit_object(request, f"channel:{row.name}")
    return channel_out(row)


@channels_router.get("/notification-channels/{name}", response_model=ChannelOut)
def get_channel(name: str, session: SessionDep, principal: PrincipalDep) -> ChannelOut:
    principal.require(Permission.manage_notifications)
    return channel_out(service.get_channel(session, name=name))


@channels_router.patch("/notification-channels/{name}", response_model=ChannelOut)
def patch_channel(
    name: str, body: ChannelPatch, session: SessionDep, principal: PrincipalDep
) -> ChannelOut:
    """Enable or disable a channel."""
    principal.require(Permission.manage_notifications)
    return channel_out(service.set_enabled(session, name=name, enabled=body.enabled))


@channels_router.delete("/notification-channels/{name}", status_code=204)
def remove_channel(name: str, session: SessionDep, principal: PrincipalDep) -> None:
    principal.require(Permission.manage_notifications)
    service.remove_channel(session, name=name)


@channels_router.post("/notification-channels/{name}/test", response_model=ReceiptOut)
async def test_channel(name: str, request: Request, principal: PrincipalDep) -> ReceiptOut:
    """Send a test message on the channel now (not through the outbox); its receipt."""
    principal.require(Permission.manage_notifications)
    db: Database = get_db(request)
    receipt = await run_in_threadpool(send_test, db, name=name, actor=principal.name)
    return ReceiptOut(
        ok=receipt.ok, status=receipt.status, code=receipt.code, detail=receipt.detail
    )


@router.get("/notifications", response_model=Page[NotificationOut])
def list_notifications(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    state: Annotated[
        OutboxState | None, Query(description="Only these; `dead`: the dead-letter list.")
    ] = None,
    incident: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Page[NotificationOut]:
    """The outbox, newest first."""
    principal.require(Permission.manage_notifications)
    rows, next_cursor = outbox.list_messages(
        session, limit=page.limit, cursor=page.cursor, state=state, incident_id=incident
    )
    return Page(items=[notification_out(r) for r in rows], next=next_cursor)


def _detail(session: SessionDep, row: OutboxMessage) -> NotificationDetail:
    tries = [attempt_out(a) for a in outbox.attempts_of(session, message_id=row.id)]
    text = outbox.message_of(row).text
    return NotificationDetail(**notification_out(row).model_dump(), text=text, tries=tries)


@router.get("/notifications/{notification_id}", response_model=NotificationDetail)
def get_notification(
    notification_id: ItemId, session: SessionDep, principal: PrincipalDep
) -> NotificationDetail:
    """A message, with the receipt of each try."""
    principal.require(Permission.manage_notifications)
    return _detail(session, outbox.get_message(session, message_id=notification_id))


@router.post("/notifications/{notification_id}/resend", response_model=NotificationDetail)
def resend_notification(
    notification_id: ItemId, session: SessionDep, principal: PrincipalDep
) -> NotificationDetail:
    """Send a dead (or delivered) message again, with every try before it."""
    principal.require(Permission.manage_notifications)
    row = outbox.resend(session, message_id=notification_id, now=utcnow())
    return _detail(session, row)
