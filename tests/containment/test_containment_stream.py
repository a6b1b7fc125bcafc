"""The control hub behind `GET /api/v1/controls/stream`: the state first, each change once,
keep-alives, changes made by other processes found by `tick`, and expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import cast

import orjson
from sqlalchemy import update

from blastwall.auth.roles import Principal, Role
from blastwall.containment import flows
from blastwall.containment.models import ContainmentAction
from blastwall.containment.policy import load_policy
from blastwall.containment.schemas import ActionIn
from blastwall.containment.stream import ControlHub
from blastwall.db import Database
from blastwall.incidents import flows as incident_flows
from blastwall.incidents.schemas import Archetype, IncidentCreate, Severity
from blastwall.inventory.schemas import Control

ADMIN = Principal(name="alice", role=Role.admin)


def _state(frame: bytes) -> dict[str, object]:
    lines = frame.decode().splitlines()
    data = next(line for line in lines if line.startswith("data: "))
    assert "event: state" in lines
    parsed: dict[str, object] = orjson.loads(data.removeprefix("data: "))
    return parsed


def _apply(db: Database, control: Control, **extra: object) -> ContainmentAction:
    with db.transaction() as session:
        incident = incident_flows.open_incident(
            session,
            data=IncidentCreate(
                title="t",
                archetype=Archetype.agentic_misalignment,
                severity=Severity.SEV2,
                systems=["refund-agent"],
            ),
            actor=ADMIN,
        )
        action, _ = flows.request_action(
            session,
            incident_id=incident.id,
            data=ActionIn(control=control, reason="r", **extra),
            actor=ADMIN,
            policy=load_policy(),
            snapshot_interactions=5,
        )
        return action


def test_stream_state_changes_keepalive_and_expiry(db: Database, inventory: list[str]) -> None:
    applied: list[int] = []

    async def scenario() -> None:
        hub = ControlHub(db, heartbeat=0.05, poll_interval=1, snapshot_interactions=5)
        # An async generator, which the test closes.
        stream = cast(AsyncGenerator[bytes, None], hub.stream("refund-agent"))
        first = await anext(stream)
        assert first.startswith(b"retry: 1000\n")
        assert _state(first)["revision"] == 0 and hub.subscribers == 1

        # A change made elsewhere (no notify): found by the next tick.
        soon = datetime.now(UTC) + timedelta(hours=1)
        action = _apply(db, Control.suspend, expires_at=soon)
        applied.append(action.id)
        await hub.tick()
        pushed = _state(await anext(stream))
        assert pushed["revision"] == 1
        assert pushed["controls"][0]["control"] == "suspend"  # type: ignore[index]
        assert await anext(stream) == b": keep-alive\n\n"  # nothing new: no repeat

        # Make the control due, as if an hour had passed; the tick lifts and pushes it.
        with db.transaction() as session:
            session.execute(
                update(ContainmentAction)
                .where(ContainmentAction.id == action.id)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            session.commit()
        hub.notify("refund-agent", expires_at=datetime.now(UTC) - timedelta(seconds=1))
        # The push notify scheduled reads the state in a thread of its own; the test database
        # is one shared connection, so let that read end before the tick writes.
        await asyncio.sleep(0)
        await hub.drain()
        await hub.tick()
        frames = [await anext(stream)]
        while _state(frames[-1])["revision"] != 2:
            frames.append(await anext(stream))
        assert _state(frames[-1])["controls"] == []
        await stream.aclose()
        assert hub.subscribers == 0

    asyncio.run(scenario())
    with db.transaction() as session:
        expired = session.get(ContainmentAction, applied[0])
        assert expired is not None and expired.state == "expired"
