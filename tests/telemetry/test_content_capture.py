"""Telemetry without content: a system whose GenAI model calls arrive without prompts or
outputs is `off`, with one warning signal that says how to turn capture on; content again is
`on` and resolves it. Driven by the real OpenTelemetry SDK and openai-v2 instrumentation,
and by hand-built spans of the other conventions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import event, select
from typer.testing import CliRunner

from blastwall.api import create_app
from blastwall.cli import app as cli_app
from blastwall.db import Database
from blastwall.settings import Settings
from blastwall.signals.models import Signal
from blastwall.telemetry import capture
from blastwall.telemetry.flows import ingest
from blastwall.telemetry.otlp import decode_json
from tests.conftest import EXAMPLES, Clients
from tests.support.fake_openai import instrumented_openai
from tests.support.live import serve
from tests.support.otlp_json import chat, document, span

H = dict[str, str]
OPENAI_V2 = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only"
BLIND = {  # a chat span of each convention, as its instrumentation sends it without content
    "genai": {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"},
    "genai_events": {"gen_ai.operation.name": "chat", "gen_ai.system": "openai"},
    "openllmetry": {"llm.request.type": "chat", "gen_ai.system": "openai"},
    "openinference": {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o"},
}


def send(db: Database, system: str, *attrs: dict[str, Any]) -> None:
    body = orjson.dumps(document(system, [span(a) for a in attrs]))
    with db.transaction() as session:
        ingest(session, decoded=decode_json(body))


def state(clients: Clients, admin: H, system: str) -> dict[str, Any]:
    answer = clients.client.get(f"/api/v1/systems/{system}", headers=admin)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["content_capture"]
    return found


def warnings(clients: Clients, admin: H, system: str) -> list[dict[str, Any]]:
    answer = clients.client.get(
        "/api/v1/signals",
        params={"system": system, "kind": "content_capture_off", "limit": 100},
        headers=admin,
    )
    items: list[dict[str, Any]] = answer.json()["items"]
    return sorted(items, key=lambda s: s["id"])


@pytest.fixture
def blastwall_url(db: Database) -> Iterator[str]:
    with serve(create_app(db, Settings())) as url:
        yield url


def openai_calls(blastwall_url: str, admin: H, calls: int) -> None:
    """`calls` chat completions of refund-agent through the openai client, instrumented by
    openai-v2 with the environment as it is; each span is exported in a request of its own."""
    with instrumented_openai(blastwall_url, admin) as client:
        for _ in range(calls):
            client.chat.completions.create(
                model="gpt-4o",
                messages=[
                    {"role": "system", "content": "You issue refunds within policy."},
                    {"role": "user", "content": "Refund order 1182 in full please"},
                ],
            )


def test_openai_v2_without_content_capture_is_off_with_one_warning(
    blastwall_url: str,
    clients: Clients,
    admin: H,
    inventory: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The latest conventions, as tests/telemetry/test_openai_instrumentation.py (the instrumentation
    # reads the opt-in once a process), and capture left at its default: no content.
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    assert state(clients, admin, "refund-agent")["state"] == "unknown"
    openai_calls(blastwall_url, admin, calls=3)

    items = clients.client.get("/api/v1/interactions?system=refund-agent", headers=admin).json()
    assert len(items["items"]) == 3
    assert all(i["input_messages"] is None for i in items["items"])  # blind, as stored
    off = state(clients, admin, "refund-agent")
    assert off["state"] == "off" and off["since"]
    for setting in (OPENAI_V2, "TRACELOOP_TRACE_CONTENT=true", "OPENINFERENCE_HIDE_INPUTS"):
        assert setting in off["hint"]
    (warning,) = warnings(clients, admin, "refund-agent")  # three batches, one warning
    assert warning["severity"] == "warning" and warning["status"] == "firing"
    assert warning["source"] == "telemetry" and OPENAI_V2 in warning["summary"]
    assert warning["attributes"]["content_policy"] == "full"

    # Capture turned on: the state is on again and the warning resolved.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    openai_calls(blastwall_url, admin, calls=1)
    on = state(clients, admin, "refund-agent")
    assert on["state"] == "on" and on["hint"] is None and on["since"] > off["since"]
    (resolved,) = warnings(clients, admin, "refund-agent")
    assert resolved["status"] == "resolved" and resolved["ends_at"]

    # Lost again: one new warning.
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    openai_calls(blastwall_url, admin, calls=2)
    assert state(clients, admin, "refund-agent")["state"] == "off"
    assert [w["status"] for w in warnings(clients, admin, "refund-agent")] == [
        "resolved",
        "firing",
    ]


def test_openai_v2_with_content_capture_is_on_without_warning(
    blastwall_url: str,
    clients: Clients,
    admin: H,
    inventory: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    openai_calls(blastwall_url, admin, calls=2)
    on = state(clients, admin, "refund-agent")
    assert on["state"] == "on" and on["hint"] is None
    assert warnings(clients, admin, "refund-agent") == []


@pytest.mark.parametrize("convention", sorted(BLIND))
def test_each_convention_without_content_is_off(
    db: Database, clients: Clients, admin: H, inventory: list[str], convention: str
) -> None:
    send(db, "support-chatbot", BLIND[convention], BLIND[convention])
    assert state(clients, admin, "support-chatbot")["state"] == "off"
    assert len(warnings(clients, admin, "support-chatbot")) == 1


def test_one_model_call_with_content_makes_the_batch_on(
    db: Database, clients: Clients, admin: H, inventory: list[str]
) -> None:
    send(db, "support-chatbot", BLIND["genai"], chat("Where is my parcel?", "On its way."))
    assert state(clients, admin, "support-chatbot")["state"] == "on"
    assert warnings(clients, admin, "support-chatbot") == []


def test_only_model_calls_are_judged(
    db: Database, clients: Clients, admin: H, inventory: list[str]
) -> None:
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "issue-refund"}
    embeddings = {"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai"}
    send(db, "refund-agent", tool, embeddings)
    assert state(clients, admin, "refund-agent") == {
        "state": "unknown",
        "since": None,
        "hint": None,
    }
    assert warnings(clients, admin, "refund-agent") == []


def test_hashes_needs_the_content_too_and_unregistered_systems_are_left_alone(
    db: Database, clients: Clients, admin: H, inventory: list[str]
) -> None:
    system = clients.client.get("/api/v1/systems/fraud-scoring", headers=admin).json()["spec"]
    system.setdefault("telemetry", {})["content_policy"] = "hashes"
    assert clients.client.post("/api/v1/systems", json=system, headers=admin).status_code == 200
    send(db, "fraud-scoring", BLIND["genai"])
    (warning,) = warnings(clients, admin, "fraud-scoring")
    assert warning["attributes"]["content_policy"] == "hashes"

    send(db, "shadow-bot", BLIND["genai"])
    with db.transaction() as session:
        kinds = set(session.scalars(select(Signal.kind).where(Signal.system_ref == "shadow-bot")))
    assert kinds == {"unregistered_system"}


def test_a_known_state_costs_no_statement(
    db: Database, clients: Clients, admin: H, inventory: list[str]
) -> None:
    """Stored when it changes; a batch in the state this process knows reads nothing."""
    statements: list[str] = []
    with db.transaction() as session:
        bind = session.get_bind()

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(bind, "before_cursor_execute", seen)
    try:
        send(db, "support-chatbot", BLIND["genai"])
        assert any("content_capture" in s for s in statements)
        statements.clear()
        send(db, "support-chatbot", BLIND["genai"], BLIND["openinference"])
        assert not any("content_capture" in s for s in statements), statements
        assert statements  # the batch itself was stored
    finally:
        event.remove(bind, "before_cursor_execute", seen)
    assert len(warnings(clients, admin, "support-chatbot")) == 1


def test_inventory_show_says_it(
    cli: CliRunner, inventory_dir: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blastwall.console import open_database

    def run(*args: str) -> Any:
        result = cli.invoke(cli_app, list(args))
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    assert "# content capture: unknown" in run("inventory", "show", "refund-agent").stdout
    db = open_database()
    try:
        send(db, "refund-agent", BLIND["genai"])
    finally:
        db.engine.dispose()
    shown = run("inventory", "show", "refund-agent").stdout
    assert "# content capture: off since" in shown and "TRACELOOP_TRACE_CONTENT=true" in shown
    assert "OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental" in shown
    as_json = run("inventory", "show", "refund-agent", "--json")
    assert json.loads(as_json.stdout)["id"] == "refund-agent"  # the declaration alone
    assert "content capture: off" in as_json.stderr


@pytest.fixture
def inventory_dir(cli: CliRunner) -> None:
    """The CLI's own database, initialised, with the example inventory."""
    for args in (["init"], ["inventory", "apply", str(EXAMPLES)]):
        result = cli.invoke(cli_app, args)
        assert result.exit_code == 0, result.output


def test_seen_in_is_per_system() -> None:
    records: list[dict[str, Any]] = [
        {"system_id": "a", "operation": "chat", "input_messages": None, "output_messages": None,
         "system_instructions": None},
        {"system_id": "b", "operation": "chat", "input_messages": [1], "output_messages": None,
         "system_instructions": None},
        {"system_id": None, "operation": "chat", "input_messages": None, "output_messages": None,
         "system_instructions": None},
    ]  # fmt: skip
    assert capture.seen_in(records) == {"a": False, "b": True}
