"""The OTLP/HTTP receiver, fed by the OpenTelemetry SDK's own exporter over real HTTP."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from blastwall.api import create_app
from blastwall.db import Database
from blastwall.settings import Settings
from tests.conftest import Clients
from tests.support.live import serve
from tests.support.sdk_spans import MESSAGES_IN, make_spans, to_otlp_json

H = dict[str, str]


@pytest.fixture
def live(db: Database) -> Iterator[tuple[str, FastAPI]]:
    app = create_app(db, Settings())
    with serve(app) as url:
        yield url, app


def test_sdk_exporter_protobuf(
    live: tuple[str, FastAPI], clients: Clients, admin: H, inventory: list[str]
) -> None:
    url, _ = live
    spans = make_spans("support-chatbot")
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=admin, timeout=60)
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    client = clients.client
    items = client.get("/api/v1/interactions?system=support-chatbot", headers=admin).json()["items"]
    by_op = {i["operation"]: i for i in items}
    chat = by_op["chat"]
    assert chat["schema"] == "genai"
    assert chat["provider"] == "openai" and chat["request_model"] == "gpt-4o"
    assert chat["response_model"] == "gpt-4o-2024-08-06"
    assert chat["conversation_id"] == "conv-42" and chat["user_id"] == "customer-7"
    assert chat["input_messages"] == MESSAGES_IN
    assert chat["output_messages"][0]["parts"][0]["name"] == "lookup-order"
    assert (chat["input_tokens"], chat["output_tokens"]) == (31, 12)
    assert chat["system_instructions_hash"].startswith("sha256:")
    (sent,) = [s for s in spans if s.name == "chat gpt-4o"]
    assert sent.start_time is not None and sent.end_time is not None
    assert chat["latency_ms"] == pytest.approx((sent.end_time - sent.start_time) / 1e6)
    tool = by_op["execute_tool"]
    assert tool["tool_name"] == "lookup-order" and tool["tool_call_id"] == "call_1"
    trace_id = chat["trace_id"]
    tree = client.get(f"/api/v1/traces/{trace_id}", headers=admin).json()
    assert tree["spans"] == 3 and tree["interactions"] == 2
    (root,) = tree["roots"]
    assert root["name"] == "POST /chat" and root["interaction_id"] is None
    assert sorted(c["operation"] for c in root["children"]) == ["chat", "execute_tool"]


def test_json_and_gzip(
    live: tuple[str, FastAPI], clients: Clients, admin: H, inventory: list[str]
) -> None:
    url, _ = live
    document = to_otlp_json(make_spans("refund-agent"))
    answer = httpx.post(f"{url}/v1/traces", json=document, headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {}
    body = gzip.compress(encode_spans(make_spans("refund-agent")).SerializeToString())
    zipped = httpx.post(
        f"{url}/v1/traces",
        content=body,
        headers={**admin, "content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert zipped.status_code == 200
    reply = ExportTraceServiceResponse.FromString(zipped.content)
    assert reply.partial_success.rejected_spans == 0
    items = clients.client.get(
        "/api/v1/interactions?system=refund-agent&operation=chat", headers=admin
    ).json()["items"]
    assert len(items) == 2


def test_unregistered_systems_are_kept_and_reported(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    headers = {**admin, "content-type": "application/x-protobuf"}
    for _ in range(2):  # two batches of new spans (the same batch twice is stored once)
        body = encode_spans(make_spans("marketing-copy-bot")).SerializeToString()
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
    items = client.get("/api/v1/interactions?unregistered=true", headers=admin).json()["items"]
    assert len(items) == 4 and {i["service_name"] for i in items} == {"marketing-copy-bot"}
    assert {i["content_policy"] for i in items} == {"redacted"}
    seen = client.get("/api/v1/telemetry/unregistered", headers=admin).json()["items"]
    assert seen[0]["service_name"] == "marketing-copy-bot" and seen[0]["interactions"] == 4
    signals = client.get("/api/v1/signals?source=telemetry", headers=admin).json()["items"]
    assert len(signals) == 1 and signals[0]["kind"] == "unregistered_system"


def test_system_resolved_from_resource_attribute(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    spans = make_spans("some-k8s-deployment", system_id="code-assistant")
    body = encode_spans(spans).SerializeToString()
    answer = client.post(
        "/v1/traces", content=body, headers={**admin, "content-type": "application/x-protobuf"}
    )
    assert answer.status_code == 200
    items = client.get("/api/v1/interactions?system=code-assistant", headers=admin).json()
    assert len(items["items"]) == 2


def test_ingest_keys(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    made = client.post(
        "/api/v1/telemetry/keys", json={"system_id": "refund-agent"}, headers=admin
    ).json()
    key = {"x-blastwall-ingest-key": made["key"], "content-type": "application/x-protobuf"}
    body = encode_spans(make_spans("anything")).SerializeToString()
    assert client.post("/v1/traces", content=body, headers=key).status_code == 200
    assert (
        len(client.get("/api/v1/interactions?system=refund-agent", headers=admin).json()["items"])
        == 2
    )
    other = encode_spans(make_spans("x", system_id="support-chatbot")).SerializeToString()
    answer = client.post("/v1/traces", content=other, headers=key)
    reply = ExportTraceServiceResponse.FromString(answer.content)
    assert reply.partial_success.rejected_spans == 3
    assert "ingest key" in reply.partial_success.error_message
    client.post(f"/api/v1/telemetry/keys/{made['id']}/revoke", headers=admin)
    assert client.post("/v1/traces", content=body, headers=key).status_code == 401


def test_bad_requests_get_clear_4xx(
    clients: Clients, admin: H, inventory: list[str], db: Database
) -> None:
    client = clients.client
    proto = {**admin, "content-type": "application/x-protobuf"}
    body = encode_spans(make_spans("support-chatbot")).SerializeToString()
    assert (
        client.post(
            "/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
        ).status_code
        == 401
    )
    viewer = clients.headers("viewer")
    assert (
        client.post(
            "/v1/traces", content=body, headers={**viewer, "content-type": "application/x-protobuf"}
        ).status_code
        == 403
    )
    garbage = client.post("/v1/traces", content=b"\xff\x00garbage", headers=proto)
    assert garbage.status_code == 400 and "protobuf" in garbage.json()["detail"]
    truncated = client.post("/v1/traces", content=body[: len(body) // 2], headers=proto)
    assert truncated.status_code == 400
    bad_json = client.post(
        "/v1/traces",
        content=b'{"resourceSpans": 7}',
        headers={**admin, "content-type": "application/json"},
    )
    assert bad_json.status_code == 400 and "resourceSpans" in bad_json.json()["detail"]
    text = client.post("/v1/traces", content=b"hi", headers={**admin, "content-type": "text/plain"})
    assert text.status_code == 415
    bomb = gzip.compress(b"\x00" * (70 * 1024 * 1024))
    big = client.post("/v1/traces", content=bomb, headers={**proto, "content-encoding": "gzip"})
    assert big.status_code in (400, 413)
    # nothing that was refused touched what was stored before
    assert client.post("/v1/traces", content=body, headers=proto).status_code == 200
    assert len(client.get("/api/v1/interactions", headers=admin).json()["items"]) == 2


def test_nul_characters_are_taken_out_on_every_database(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    """PostgreSQL cannot store a NUL character (text, jsonb): ingest takes it out of every
    string, so that the batch is stored, the same on SQLite (tests/security/test_nul.py)."""
    client = clients.client
    request = encode_spans(make_spans("support-chatbot"))
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.attributes.add(key="note", value={"string_value": "a\x00b"})
    proto = {**admin, "content-type": "application/x-protobuf"}
    answer = client.post("/v1/traces", content=request.SerializeToString(), headers=proto)
    assert answer.status_code == 200
    stored = client.get("/api/v1/interactions", headers=admin).json()["items"]
    assert {i["attributes"]["note"] for i in stored} == {"ab"}


def test_overload_answers_503_with_retry_after(db: Database, clients: Clients, admin: H) -> None:
    app = create_app(db, Settings(ingest_max_concurrency=1))
    app.state.ingest_inflight = 1
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        answer = client.post(
            "/v1/traces", content=b"", headers={**admin, "content-type": "application/x-protobuf"}
        )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"


def test_viewers_do_not_see_content(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    body = encode_spans(make_spans("support-chatbot")).SerializeToString()
    client.post(
        "/v1/traces", content=body, headers={**admin, "content-type": "application/x-protobuf"}
    )
    viewer = clients.headers("viewer")
    items = client.get("/api/v1/interactions?operation=chat", headers=viewer).json()["items"]
    assert items[0]["content_hidden"] is True and items[0]["input_messages"] is None
    assert items[0]["request_model"] == "gpt-4o"


def test_request_roundtrip_sanity() -> None:
    request = encode_spans(make_spans("x"))
    assert isinstance(request, ExportTraceServiceRequest)
    assert len(request.resource_spans[0].scope_spans[0].spans) == 3
