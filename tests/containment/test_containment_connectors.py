"""Containment connectors are plugins: their answers go on the timeline, and a failing one
undoes the whole action and is named in the error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from blastwall.containment.schemas import ActionRecord
from blastwall.hookspecs import hookimpl
from blastwall.plugins import ContainmentConnector, plugin_manager
from tests.conftest import Clients

H = dict[str, str]


class FlagService:
    """A connector that turns a feature flag off, as a real one would over HTTP."""

    name = "flag-service"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, int]] = []

    def supports(self, control: str) -> bool:
        return control == "suspend"

    def apply(self, action: ActionRecord) -> str:
        if self.fail:
            raise RuntimeError("flag service answered 503")
        self.calls.append(("apply", action.id))
        return f"flag {action.system_id}.enabled set to false"

    def revert(self, action: ActionRecord, *, reason: str) -> str:
        self.calls.append(("revert", action.id))
        return f"flag {action.system_id}.enabled set to true"


class Plugin:
    def __init__(self, connector: FlagService) -> None:
        self.connector = connector

    @hookimpl
    def blastwall_containment_connectors(self) -> list[ContainmentConnector]:
        return [self.connector]


@pytest.fixture
def connector(request: pytest.FixtureRequest) -> Iterator[FlagService]:
    flags = FlagService(fail=getattr(request, "param", False))
    manager = plugin_manager()
    plugin = Plugin(flags)
    manager.register(plugin, name="test-flag-service")
    try:
        yield flags
    finally:
        manager.unregister(plugin)


def _open(clients: Clients, admin: H) -> int:
    answer = clients.client.post(
        "/api/v1/incidents",
        json={
            "title": "t",
            "archetype": "agentic_misalignment",
            "severity": "SEV1",
            "systems": ["refund-agent"],
        },
        headers=admin,
    )
    return int(answer.json()["id"])


def test_connector_answers_go_on_the_timeline(
    clients: Clients, admin: H, inventory: list[str], connector: FlagService
) -> None:
    client = clients.client
    incident = _open(clients, admin)
    url = f"/api/v1/incidents/{incident}/actions"
    action = client.post(url, json={"control": "suspend", "reason": "r"}, headers=admin).json()
    client.post(f"{url}/{action['id']}/revert", json={"reason": "done"}, headers=admin)
    assert connector.calls == [("apply", action["id"]), ("revert", action["id"])]
    entries = client.get(f"/api/v1/incidents/{incident}/timeline", headers=admin).json()
    by_kind: dict[str, dict[str, Any]] = {e["kind"]: e["data"] for e in entries["items"]}
    applied = by_kind["containment_applied"]["connectors"]
    reverted = by_kind["containment_reverted"]["connectors"]
    assert {c["connector"] for c in applied} == {"control-plane", "flag-service"}
    assert {"connector": "flag-service", "result": "flag refund-agent.enabled set to false"} in (
        applied
    )
    assert {"connector": "flag-service", "result": "flag refund-agent.enabled set to true"} in (
        reverted
    )


@pytest.mark.parametrize("connector", [True], indirect=True)
def test_failing_connector_undoes_the_action(
    clients: Clients, admin: H, inventory: list[str], connector: FlagService
) -> None:
    client = clients.client
    incident = _open(clients, admin)
    answer = client.post(
        f"/api/v1/incidents/{incident}/actions",
        json={"control": "suspend", "reason": "r"},
        headers=admin,
    )
    assert answer.status_code == 500
    assert (
        "connector 'flag-service' failed to apply suspend on refund-agent"
        in answer.json()["detail"]
    )
    assert "503" in answer.json()["detail"]
    state = client.get("/api/v1/controls?system=refund-agent", headers=admin).json()
    assert state["controls"] == [] and state["revision"] == 0
    kinds = [
        e["kind"]
        for e in client.get(f"/api/v1/incidents/{incident}/timeline", headers=admin).json()["items"]
    ]
    assert kinds == ["created"]
    # another control, which the connector does not handle, still works
    ok = client.post(
        f"/api/v1/incidents/{incident}/actions",
        json={"control": "rate_limit", "params": {"per_minute": 3}, "reason": "r"},
        headers=admin,
    )
    assert ok.status_code == 201
