"""The guard: a local copy of one AI system's control state, kept current by the server's
push stream, and the checks an application makes before a model call, a tool call, taking
an input in and letting an output out. The stream's events are read by httpx-sse."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar
from urllib.parse import quote

import httpx
from httpx_sse import EventSource

from blastwall_guard.errors import (
    ApprovalRequired,
    Blocked,
    ManualFallback,
    Quarantined,
    RateLimited,
    Suspended,
    ToolDenied,
    Unavailable,
)
from blastwall_guard.names import tool_key
from blastwall_guard.state import View, cite, compile_state, unreachable

#: The guard's logger keeps its documented name, `blastwall.guard`, under any import name.
log = logging.getLogger("blastwall.guard")

#: Sent to the server on the control stream, which keeps the guards of each system in view
#: (version 2: canonical tool names, undeclared tools reported).
GUARD_VERSION = "2"

P = ParamSpec("P")
R = TypeVar("R")
Approver = Callable[[str, dict[str, Any]], bool]


@dataclass(frozen=True)
class ToolDecision:
    """`outcome` is "allow", "deny" or "approval"; `reason` says why when not allowed."""

    outcome: Literal["allow", "deny", "approval"]
    reason: str = ""
    control: dict[str, Any] | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"


ALLOW = ToolDecision("allow")


@dataclass(frozen=True)
class CallPlan:
    """What a model call must use: the pinned prompt and model versions (None: the
    application's own choice). `prompts` and `models` hold every pin by component id;
    `prompt_hashes` the content hash of each pinned prompt version, so the application can
    check that the text it loads is the pinned one."""

    prompt_version: str | None
    model_version: str | None
    prompts: dict[str | None, str]
    models: dict[str | None, str]
    prompt_id: str | None = None
    prompt_hash: str | None = None
    model_id: str | None = None
    prompt_hashes: dict[str | None, str] = dataclasses.field(default_factory=dict)


class Guard:
    """The control state of `system_id` at `url`, read with `token` (any role may read it).

    `fail_mode` says what checks do while the server cannot be reached: "closed" refuses
    everything (raising `Unavailable`, or denying tools), "open" keeps enforcing the last
    state received and allows the rest. Before the first state arrives, and after every
    reconnection until the state is resynchronised, the server is treated as unreachable.
    `agent` names the agent this guard runs in (for agent suspensions); `approver(tool,
    args) -> bool` is asked when a tool needs a person's approval; without one, a person is
    asked in Blastwall (`request_approval`)."""

    def __init__(
        self,
        system_id: str,
        url: str,
        token: str,
        fail_mode: Literal["closed", "open"] = "closed",
        *,
        agent: str | None = None,
        approver: Approver | None = None,
        approval_timeout: float = 60.0,
        approval_poll: float = 0.25,
        read_timeout: float = 30.0,
        max_backoff: float = 2.0,
        transport: httpx.BaseTransport | None = None,
        start: bool = True,
    ) -> None:
        if fail_mode not in ("closed", "open"):
            raise ValueError(f"fail_mode is 'closed' or 'open', not {fail_mode!r}")
        self.system_id = system_id
        self.url = url.rstrip("/")
        self.fail_mode = fail_mode
        self.agent = agent
        self._agent_key = tool_key(agent) if agent else None
        self.approver = approver
        self.approval_timeout = approval_timeout
        self.approval_poll = approval_poll
        self.read_timeout = read_timeout
        self.max_backoff = max_backoff
        self._token = token
        self._transport = transport
        self._last: View | None = None
        self._view: View = (
            unreachable(f"no control state for {system_id} received from {self.url} yet")
            if fail_mode == "closed"
            else View()
        )
        self._connected = False
        self._told = False  # whether the loss of the stream has been logged since
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._listeners: list[Callable[[int], None]] = []
        self._reported: set[tuple[str, str]] = set()
        self._report_lock = threading.Lock()
        self._bucket_lock = threading.Lock()
        self._tokens = 0.0
        self._bucket_limit: int | None = None
        self._filled = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"blastwall-guard-{system_id}", daemon=True
        )
        if start:
            self._thread.start()

    # -- life -----------------------------------------------------------------------------

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until the first state has arrived; False if it did not within `timeout`."""
        return self._ready.wait(timeout)

    @property
    def connected(self) -> bool:
        """Whether the guard holds a stream with a resynchronised state now."""
        return self._connected

    @property
    def revision(self) -> int:
        """The revision of the state the checks read (-1 before any)."""
        return self._last.revision if self._last else -1

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call `listener(revision)` after each new state is in force."""
        self._listeners.append(listener)

    def close(self) -> None:
        """Stop the stream and its thread."""
        self._stop.set()
        response = self._response
        if response is not None:
            # Wake the reader blocked on the socket; it leaves and closes the stream itself.
            stream = response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join(5)

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the stream -----------------------------------------------------------------------

    def _install(self, state: dict[str, Any]) -> None:
        view = compile_state(state, now=time.time())
        resynced = not self._connected
        self._last = self._view = view
        self._connected = True
        self._told = False
        self._ready.set()
        if resynced:
            log.info(
                "blastwall guard for %s: control state at revision %d received from %s",
                self.system_id,
                view.revision,
                self.url,
            )
        for listener in self._listeners:
            listener(view.revision)

    def _lost(self, why: str) -> None:
        tell = self._connected or not self._told
        self._connected = False
        self._told = True
        if self.fail_mode == "closed":
            self._view = unreachable(
                f"the control plane at {self.url} is unreachable ({why}); failing closed"
            )
        elif self._last is not None:
            self._view = self._last
        else:
            self._view = View()
        if tell:
            log.warning(
                "blastwall guard for %s: control plane at %s unreachable (%s); failing %s "
                "until the state is resynchronised",
                self.system_id,
                self.url,
                why,
                self.fail_mode,
            )

    def _run(self) -> None:
        backoff = 0.1
        timeout = httpx.Timeout(5.0, read=self.read_timeout)
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "text/event-stream",
            "X-Blastwall-Guard": f"version={GUARD_VERSION}; fail_mode={self.fail_mode}",
        }
        if self.agent:
            headers["X-Blastwall-Guard"] += f"; agent={quote(self.agent)}"
        while not self._stop.is_set():
            try:
                with (
                    httpx.Client(timeout=timeout, headers=headers, transport=self._transport) as c,
                    c.stream(
                        "GET",
                        f"{self.url}/api/v1/controls/stream",
                        params={"system": self.system_id},
                    ) as response,
                ):
                    if response.status_code != 200:
                        body = response.read().decode(errors="replace")[:300]
                        raise ConnectionError(f"HTTP {response.status_code}: {body}")
                    self._response = response
                    for event in EventSource(response).iter_sse():
                        if event.event == "state":
                            self._install(json.loads(event.data))
                            backoff = 0.1
                    why = "the stream ended"
            except (httpx.HTTPError, ConnectionError, ValueError, KeyError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            finally:
                self._response = None
            if self._stop.is_set():
                break
            self._lost(why)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    # -- checks ---------------------------------------------------------------------------

    def current(self) -> View:
        """The compiled state the checks read now."""
        view = self._view
        if view.next_expiry is not None and time.time() >= view.next_expiry:
            # A control lapsed by its expiry: recompile without waiting for the server.
            old, view = view, compile_state(view.raw, now=time.time())
            if self._view is old:
                self._view = view
            if self._last is old:
                self._last = view
        return view

    def check_call(self) -> CallPlan:
        """Before a model call: raises Unavailable, Suspended, ManualFallback or RateLimited,
        or answers the pinned versions to use."""
        view = self.current()
        if view.unavailable:
            raise Unavailable(view.unavailable)
        if view.suspended:
            raise Suspended(
                f"{self.system_id} is suspended: {cite(view.suspended)}", view.suspended
            )
        if self._agent_key and self._agent_key in view.suspended_agents:
            control = view.suspended_agents[self._agent_key]
            raise Suspended(f"agent {self.agent} is suspended: {cite(control)}", control)
        if self._agent_key and view.agents is not None and self._agent_key not in view.agents:
            self._undeclared("agent", self.agent or "")
            if self.fail_mode == "closed" and view.in_force:
                raise Suspended(
                    f"agent {self.agent} is not declared for {self.system_id} in the inventory, "
                    f"and {view.in_force} control(s) are in force: failing closed"
                )
        if view.fallback_control:
            raise ManualFallback(
                f"{self.system_id} is switched to its manual fallback "
                f"({view.fallback or 'see the inventory'}): {cite(view.fallback_control)}",
                view.fallback_control,
                view.fallback,
            )
        if view.per_minute is not None:
            self._take(view)
        prompt_id = next(iter(view.prompt_pins), None)
        return CallPlan(
            prompt_version=next(iter(view.prompt_pins.values()), None),
            model_version=next(iter(view.model_pins.values()), None),
            prompts=view.prompt_pins,
            models=view.model_pins,
            prompt_id=prompt_id,
            prompt_hash=view.prompt_hashes.get(prompt_id),
            model_id=next(iter(view.model_pins), None),
            prompt_hashes=view.prompt_hashes,
        )

    def _take(self, view: View) -> None:
        assert view.per_minute is not None
        with self._bucket_lock:
            now = time.monotonic()
            if self._bucket_limit != view.per_minute:  # a new limit starts with a full bucket
                self._bucket_limit, self._tokens = view.per_minute, float(view.per_minute)
            rate = view.per_minute / 60.0
            self._tokens = min(float(view.per_minute), self._tokens + (now - self._filled) * rate)
            self._filled = now
            if self._tokens < 1.0:
                raise RateLimited(
                    f"{self.system_id} is limited to {view.per_minute} model calls a minute: "
                    f"{cite(view.rate_control or {})}",
                    view.rate_control,
                )
            self._tokens -= 1.0

    def check_tool(self, name: str, args: dict[str, Any] | None = None) -> ToolDecision:
        """Before a tool call: allow, deny (with the reason), or needs approval. Tool names
        are compared canonically (`issue_refund` is the inventory's `issue-refund`). A tool
        the inventory does not declare is reported to Blastwall once, and denied while a
        control is in force on the system if the guard fails closed."""
        view = self.current()
        if view.unavailable:
            return ToolDecision("deny", view.unavailable)
        key = tool_key(name)
        control = (
            view.suspended
            or (view.suspended_agents.get(self._agent_key) if self._agent_key else None)
            or view.fallback_control
            or view.revoked.get(key)
        )
        if control is not None:
            return ToolDecision("deny", f"{name} is not allowed now: {cite(control)}", control)
        if view.tools is not None and key not in view.tools:
            self._undeclared("tool", name)
            if self.fail_mode == "closed" and view.in_force:
                return ToolDecision(
                    "deny",
                    f"{name} is not a tool of {self.system_id} in the inventory, and "
                    f"{view.in_force} control(s) are in force: failing closed",
                )
        control = view.approval_all or view.approval.get(key)
        if control is not None:
            return ToolDecision("approval", f"{name} needs approval: {cite(control)}", control)
        return ALLOW

    def screen_input(self, text: str) -> str:
        """The input, unless it matches a blocked pattern (Blocked) or the guard fails
        closed (Unavailable)."""
        view = self.current()
        if view.unavailable:
            raise Unavailable(view.unavailable)
        for pattern, control in view.blocks:
            if pattern.search(text):
                raise Blocked(
                    f"input matches the blocked pattern {pattern.pattern!r}: {cite(control)}",
                    control,
                )
        return text

    def release_output(self, text: str, *, conversation_id: str | None = None) -> str:
        """The output, unless outputs are quarantined or the guard fails closed
        (Unavailable). A quarantined output is handed over to Blastwall for a person to
        review (`POST /api/v1/controls/held`); Quarantined carries the text and its number
        there."""
        view = self.current()
        if view.unavailable:
            raise Unavailable(view.unavailable)
        if view.quarantine:
            held_id = self.hold_output(text, conversation_id=conversation_id)
            where = f" as held output {held_id}" if held_id is not None else ""
            raise Quarantined(
                f"outputs of {self.system_id} are held for review{where}: {cite(view.quarantine)}",
                view.quarantine,
                text,
                held_id,
            )
        return text

    def _undeclared(self, kind: str, name: str) -> None:
        """Tell Blastwall, once per name, that this application uses a tool or agent the
        inventory does not declare (shadow capability). The report goes out on a thread of
        its own: the check does not wait for it."""
        with self._report_lock:
            if (kind, tool_key(name)) in self._reported:
                return
            self._reported.add((kind, tool_key(name)))
        body = {"system": self.system_id, "kind": kind, "name": name, "agent": self.agent}
        log.warning(
            "blastwall guard for %s: %s %r is not declared in the inventory; reporting it",
            self.system_id,
            kind,
            name,
        )
        threading.Thread(
            target=self._post, args=("/api/v1/controls/undeclared", body), daemon=True
        ).start()

    def _post(self, path: str, body: dict[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            with httpx.Client(
                base_url=self.url, headers=headers, timeout=5.0, transport=self._transport
            ) as client:
                answer = client.post(path, json=body)
            if answer.status_code >= 300:
                log.warning(
                    "could not report to %s: HTTP %s %s",
                    path,
                    answer.status_code,
                    answer.text[:300],
                )
        except httpx.HTTPError as exc:
            log.warning("could not report to %s: %s: %s", path, type(exc).__name__, exc)

    def hold_output(self, text: str, *, conversation_id: str | None = None) -> int | None:
        """Hand a held output to Blastwall for review; its number there, or None when it
        could not be handed over (logged; the application keeps the text)."""
        body = {"system": self.system_id, "text": text, "conversation_id": conversation_id}
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            with httpx.Client(
                base_url=self.url, headers=headers, timeout=5.0, transport=self._transport
            ) as client:
                answer = client.post("/api/v1/controls/held", json=body)
            if answer.status_code == 201:
                return int(answer.json()["id"])
            log.warning(
                "could not hand a held output over: HTTP %s %s",
                answer.status_code,
                answer.text[:300],
            )
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("could not hand a held output over: %s: %s", type(exc).__name__, exc)
        return None

    def approve(self, name: str, args: dict[str, Any], approver: Approver | None = None) -> bool:
        """Whether a tool call that needs approval may go ahead: asks `approver` (or the
        guard's), else a person in Blastwall (`request_approval`), waiting at most
        `approval_timeout` seconds; False when refused or without an answer in time."""
        return self._approval(name, args, approver)[0]

    def _approval(
        self, name: str, args: dict[str, Any], approver: Approver | None = None
    ) -> tuple[bool, str]:
        """(approved, what happened: who decided, or that no answer came) for `approve`."""
        approver = approver or self.approver
        if approver is None:
            return self._ask(name, args)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(approver, name, args)
            try:
                if future.result(timeout=self.approval_timeout):
                    return True, "approved by the approver"
                return False, "refused by the approver"
            except concurrent.futures.TimeoutError:
                log.warning("approval of %s timed out after %ss", name, self.approval_timeout)
                return False, f"no answer from the approver within {self.approval_timeout}s"

    def request_approval(self, name: str, args: dict[str, Any]) -> bool:
        """Ask Blastwall for a person's approval of one call (`POST /api/v1/controls/
        approvals`) and wait for the decision, at most `approval_timeout` seconds."""
        return self._ask(name, args)[0]

    def _ask(self, name: str, args: dict[str, Any]) -> tuple[bool, str]:
        deadline = time.monotonic() + self.approval_timeout
        body = {
            "system": self.system_id,
            "tool": name,
            "arguments": json.loads(json.dumps(args, default=str)),
            "agent": self.agent,
            "timeout": self.approval_timeout,
        }
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            with httpx.Client(
                base_url=self.url, headers=headers, timeout=5.0, transport=self._transport
            ) as client:
                asked = client.post("/api/v1/controls/approvals", json=body)
                if asked.status_code != 201:
                    log.warning(
                        "could not ask for approval of %s: HTTP %s %s",
                        name,
                        asked.status_code,
                        asked.text[:300],
                    )
                    return False, f"could not ask for approval (HTTP {asked.status_code})"
                approval = asked.json()["id"]
                log.info("waiting for a person to approve %s (approval %s)", name, approval)
                while time.monotonic() < deadline and not self._stop.is_set():
                    self._stop.wait(self.approval_poll)
                    answer = client.get(f"/api/v1/controls/approvals/{approval}").json()
                    state = answer["state"]
                    if state != "pending":
                        log.info("approval %s of %s: %s", approval, name, state)
                        who = answer.get("decided_by")
                        said = f"{state} by {who}" if who else state
                        if answer.get("note"):
                            said += f": {answer['note']}"
                        return state == "approved", f"approval {approval} {said}"
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("could not get approval of %s: %s: %s", name, type(exc).__name__, exc)
            return False, f"could not get approval ({type(exc).__name__})"
        log.warning("approval of %s timed out after %ss", name, self.approval_timeout)
        return False, f"no decision within {self.approval_timeout}s"

    def tool(
        self,
        name: str | None = None,
        *,
        fallback: Callable[..., Any] | None = None,
        approver: Approver | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a tool function: a denied call raises ToolDenied (or runs `fallback`
        with the same arguments); one that needs approval waits for the approver, then runs,
        or takes the fallback, or raises ApprovalRequired."""

        def wrap(function: Callable[P, R]) -> Callable[P, R]:
            tool_name = name or function.__name__

            @functools.wraps(function)
            def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
                decision = self.check_tool(tool_name, dict(kwargs))
                reason = decision.reason
                if decision.outcome == "approval":
                    approved, said = self._approval(tool_name, dict(kwargs), approver)
                    if approved:
                        return function(*args, **kwargs)
                    reason = f"{decision.reason}; {said}"
                if decision.outcome != "allow":
                    if fallback is not None:
                        result: R = fallback(*args, **kwargs)
                        return result
                    error = ToolDenied if decision.outcome == "deny" else ApprovalRequired
                    raise error(reason, decision.control)
                return function(*args, **kwargs)

            return guarded

        return wrap

    def wrap_openai(self, client: Any) -> Any:
        """An `openai` client whose chat completions go through this guard."""
        from blastwall_guard.openai import GuardedOpenAI

        return GuardedOpenAI(client, self)
