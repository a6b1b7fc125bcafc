"""The push side of the control plane: every guard of a system holds a server-sent events
stream, and each change to the system's control state reaches all of them at once.

One `ControlHub` per server process. A change made through this process's API is pushed at
once (`notify`); a change made elsewhere (another API process, the CLI) is found by polling
the control revisions while guards are connected; controls whose expiry has come are lifted
by the same loop. Streams hold no database session: the state is read once per change, in a
short read-only session, and the same bytes go to every guard of the system.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime

import orjson
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from blastwall.auth.models import ApiToken
from blastwall.containment import flows, service, verify
from blastwall.containment.models import ContainmentAction
from blastwall.containment.schemas import ControlState
from blastwall.db import Database, utcnow
from blastwall.errors import PluginError

log = logging.getLogger("blastwall.containment.stream")


def frame(state: ControlState) -> bytes:
    """One SSE event carrying the whole state: `id` is its revision."""
    data = orjson.dumps(state.model_dump(mode="json"))
    return b"id: %d\nevent: state\ndata: %s\n\n" % (state.revision, data)


class _Mailbox:
    """The newest frame not yet sent to one guard; older ones are superseded, never queued."""

    def __init__(self, token_id: int | None = None) -> None:
        self.revision = -1
        self.frame = b""
        self.ready = asyncio.Event()
        self.token_id = token_id
        self.closed = False  # the token that opened the stream was revoked

    def close(self) -> None:
        self.closed = True
        self.ready.set()

    def put(self, revision: int, data: bytes) -> None:
        if revision > self.revision:
            self.revision, self.frame = revision, data
            self.ready.set()


class ControlHub:
    def __init__(
        self,
        db: Database,
        *,
        heartbeat: float,
        poll_interval: float,
        snapshot_interactions: int,
        settle: float = 2.0,
        write_lock: asyncio.Lock | None = None,
    ) -> None:
        self.db = db
        self.settle = settle
        self.heartbeat = heartbeat
        self.poll_interval = poll_interval
        self.snapshot_interactions = snapshot_interactions
        self.write_lock = write_lock
        self._subscribers: dict[str, set[_Mailbox]] = {}
        self._guards: dict[str, dict[_Mailbox, verify.GuardInfo]] = {}
        self._gone: dict[str, deque[verify.GuardInfo]] = {}
        self._published: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._hint_lock = threading.Lock()
        self._next_expiry: datetime | None = None

    @property
    def subscribers(self) -> int:
        return sum(len(boxes) for boxes in self._subscribers.values())

    # -- changes --------------------------------------------------------------------------

    def notify(self, system_id: str, *, expires_at: datetime | None = None) -> None:
        """The control state of `system_id` changed (callable from any thread)."""
        if expires_at is not None:
            self._expiry_hint(expires_at)
        loop = self._loop
        if loop is not None and not loop.is_closed() and system_id in self._subscribers:
            loop.call_soon_threadsafe(self._schedule, system_id)

    def _expiry_hint(self, at: datetime | None) -> None:
        with self._hint_lock:
            if at is not None and (self._next_expiry is None or at < self._next_expiry):
                self._next_expiry = at

    def _schedule(self, system_id: str) -> None:
        task = asyncio.ensure_future(self.publish(system_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the pushes already scheduled by `notify` to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _load(self, system_id: str) -> ControlState:
        with self.db.session(read_only=True) as session:
            return service.control_state(session, system_id=system_id)

    async def publish(self, system_id: str) -> None:
        """Read the system's state once and hand it to every guard of the system."""
        if not self._subscribers.get(system_id):
            return
        state = await run_in_threadpool(self._load, system_id)
        if state.revision <= self._published.get(system_id, -1):
            return
        self._published[system_id] = state.revision
        data = frame(state)
        for box in list(self._subscribers.get(system_id, ())):
            box.put(state.revision, data)
        for control in state.controls:
            self._expiry_hint(control.expires_at)

    # -- streams --------------------------------------------------------------------------

    def guards(self, system_id: str) -> verify.Guards:
        """The guards of a system this process sees: connected now, and the last that left."""
        return verify.Guards(
            connected=list(self._guards.get(system_id, {}).values()),
            gone=list(self._gone.get(system_id, ())),
        )

    async def stream(
        self, system_id: str, guard: verify.GuardInfo | None = None, token_id: int | None = None
    ) -> AsyncIterator[bytes]:
        """The state now (the resynchronisation every new connection starts with), then each
        newer state, with keep-alive comments in between. `guard` describes the client, for
        the likely cause of a containment breach. The stream ends when the token `token_id`
        that opened it is revoked (checked every poll interval)."""
        self._loop = asyncio.get_running_loop()
        box = _Mailbox(token_id)
        self._subscribers.setdefault(system_id, set()).add(box)
        if guard is not None:
            self._guards.setdefault(system_id, {})[box] = guard
        try:
            state = await run_in_threadpool(self._load, system_id)
            sent = state.revision
            if guard is not None:
                guard.revision = sent
            self._published[system_id] = max(self._published.get(system_id, -1), sent)
            yield b"retry: 1000\n" + frame(state)
            while True:
                try:
                    await asyncio.wait_for(box.ready.wait(), timeout=self.heartbeat)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                box.ready.clear()
                if box.closed:
                    log.info("control stream of %s closed: its token was revoked", system_id)
                    return
                if box.revision > sent:
                    sent = box.revision
                    yield box.frame
                    if guard is not None:
                        guard.revision = sent
        finally:
            if guard is not None:
                self._guards.get(system_id, {}).pop(box, None)
                guard.disconnected_at = utcnow()
                self._gone.setdefault(system_id, deque(maxlen=5)).append(guard)
            boxes = self._subscribers.get(system_id)
            if boxes is not None:
                boxes.discard(box)
                if not boxes:
                    del self._subscribers[system_id]

    # -- the loop -------------------------------------------------------------------------

    def _expire(self) -> tuple[list[str], datetime | None]:
        lapsed, upcoming = expire_due(
            self.db, now=utcnow(), snapshot_interactions=self.snapshot_interactions
        )
        return sorted({a.system_id for a in lapsed}), upcoming

    async def expire(self) -> list[str]:
        """Lift the controls whose expiry has come; answers the systems changed."""
        if self.write_lock is not None:
            async with self.write_lock:
                systems, upcoming = await run_in_threadpool(self._expire)
        else:
            systems, upcoming = await run_in_threadpool(self._expire)
        with self._hint_lock:
            self._next_expiry = upcoming
        return systems

    def _revisions(
        self, system_ids: list[str], token_ids: set[int]
    ) -> tuple[dict[str, int], datetime | None, set[int]]:
        with self.db.session(read_only=True) as session:
            revoked = set()
            if token_ids:
                revoked = set(
                    session.scalars(
                        select(ApiToken.id).where(
                            ApiToken.id.in_(token_ids), ApiToken.revoked_at.is_not(None)
                        )
                    )
                )
            return (
                service.revisions(session, system_ids=system_ids),
                service.next_expiry(session),
                revoked,
            )

    def _verify(self) -> int:
        """One look at the telemetry of every watched action, a transaction each; answers
        the breaches raised."""
        raised = 0
        with self.db.session() as session:
            for action in verify.watched(session):
                try:
                    signal = verify.verify_action(
                        session,
                        action,
                        now=utcnow(),
                        settle=self.settle,
                        guards=self.guards(action.system_id),
                    )
                    session.commit()
                except Exception:
                    session.rollback()
                    log.exception("could not verify containment action %s", action.id)
                    continue
                if signal is not None:
                    raised += 1
                    log.critical("containment breach: %s", signal.summary)
        return raised

    def _watching(self) -> bool:
        with self.db.session(read_only=True) as session:
            return bool(verify.watched(session))

    async def verify(self) -> int:
        """Verify the active containment actions against the telemetry (see `verify`)."""
        if not await run_in_threadpool(self._watching):
            return 0
        if self.write_lock is not None:
            async with self.write_lock:
                return await run_in_threadpool(self._verify)
        return await run_in_threadpool(self._verify)

    async def tick(self) -> None:
        """One round: lift what has expired, push what other processes changed, verify the
        controls in force against the telemetry."""
        due = self._next_expiry
        if due is not None and due <= utcnow():
            for system_id in await self.expire():
                await self.publish(system_id)
        if not self.db.one_connection:
            await self.verify()
        if self._subscribers:
            boxes = [box for boxes in self._subscribers.values() for box in boxes]
            tokens = {box.token_id for box in boxes if box.token_id is not None}
            current, upcoming, revoked = await run_in_threadpool(
                self._revisions, list(self._subscribers), tokens
            )
            for box in boxes:
                if box.token_id in revoked:
                    box.close()
            self._expiry_hint(upcoming)
            for system_id, revision in current.items():
                if revision > self._published.get(system_id, -1):
                    await self.publish(system_id)

    async def run(self) -> None:
        """Tick every `poll_interval` seconds until cancelled."""
        self._loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.tick()
            except Exception:
                log.exception("the containment loop failed a round; it tries again")


def expire_due(
    db: Database, *, now: datetime, snapshot_interactions: int
) -> tuple[list[ContainmentAction], datetime | None]:
    """The expiry loop's round: lift the controls whose expiry has come, a transaction each
    (a connector that fails is logged, and tried again next round), then mark the tool-call
    approvals nobody decided in time expired. Answers the controls lifted and when the next
    expiry is due."""
    with db.session(read_only=True) as session:
        due = [a.id for a in service.due_for_expiry(session, now=now)]
    lapsed = []
    for action_id in due:
        try:
            with db.transaction() as session:
                action = flows.expire_action(
                    session,
                    action_id=action_id,
                    now=now,
                    snapshot_interactions=snapshot_interactions,
                )
        except PluginError:
            log.exception("could not lift expired containment action %s", action_id)
            continue
        if action is not None:
            lapsed.append(action)
    with db.transaction() as session:
        flows.expire_undecided(session, now=now)
        return lapsed, service.next_expiry(session)
