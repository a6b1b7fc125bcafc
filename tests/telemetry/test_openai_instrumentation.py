"""A real instrumentation: opentelemetry-instrumentation-openai-v2 around the openai client,
talking to a small OpenAI-compatible server, exporting over OTLP/HTTP to Blastwall."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blastwall.api import create_app
from blastwall.db import Database
from blastwall.settings import Settings
from tests.conftest import Clients
from tests.support.fake_openai import instrumented_openai
from tests.support.live import serve

H = dict[str, str]


@pytest.fixture
def blastwall_url(db: Database) -> Iterator[str]:
    with serve(create_app(db, Settings())) as url:
        yield url


def test_openai_v2_spans_become_complete_interactions(
    blastwall_url: str,
    clients: Clients,
    admin: H,
    inventory: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    with instrumented_openai(blastwall_url, admin) as client:
        client.chat.completions.create(
            model="gpt-4o",
            messages=[
                {"role": "system", "content": "You issue refunds within policy."},
                {"role": "user", "content": "Refund order 1182 in full please"},
            ],
            tools=[
                {
                    "type": "function",
                    "function": {"name": "issue-refund", "parameters": {"type": "object"}},
                }
            ],
        )
    items = clients.client.get("/api/v1/interactions?system=refund-agent", headers=admin).json()[
        "items"
    ]
    assert len(items) == 1, items
    chat = items[0]
    assert chat["operation"] == "chat"
    assert chat["provider"] == "openai"
    assert chat["request_model"] == "gpt-4o"
    assert chat["response_model"] == "gpt-4o-2024-08-06"
    assert (chat["input_tokens"], chat["output_tokens"]) == (57, 21)
    assert chat["finish_reasons"] == ["tool_calls"]
    texts = [p.get("content") for m in chat["input_messages"] for p in m["parts"]]
    assert "Refund order 1182 in full please" in texts
    call = next(p for m in chat["output_messages"] for p in m["parts"] if p["type"] == "tool_call")
    assert call["name"] == "issue-refund" and call["id"] == "call_9"
    assert chat["system_instructions"] or any(m["role"] == "system" for m in chat["input_messages"])
