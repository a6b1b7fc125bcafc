"""A small OpenAI-compatible server, for the openai client and its instrumentation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from tests.support.live import serve

if TYPE_CHECKING:
    import openai


def fake_openai() -> FastAPI:
    """Answers chat completions with a tool call, the way the OpenAI API does."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    def complete(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_9",
                                "type": "function",
                                "function": {
                                    "name": "issue-refund",
                                    "arguments": '{"order": "1182", "amount": 950}',
                                },
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 57, "completion_tokens": 21, "total_tokens": 78},
        }

    return app


@contextmanager
def instrumented_openai(blastwall_url: str, headers: dict[str, str]) -> Iterator[openai.OpenAI]:
    """An openai client of refund-agent talking to `fake_openai()`, instrumented by openai-v2
    with the environment as it is; each span is exported to Blastwall in a request of its
    own, and all are sent when the block ends."""
    import openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "refund-agent"}))
    exporter = OTLPSpanExporter(endpoint=f"{blastwall_url}/v1/traces", headers=headers, timeout=60)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with (
            serve(fake_openai()) as openai_url,
            openai.OpenAI(base_url=f"{openai_url}/v1", api_key="test-key", max_retries=0) as client,
        ):
            yield client
        provider.force_flush()
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
