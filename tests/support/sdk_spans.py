"""GenAI spans made by the OpenTelemetry SDK (a request, a chat call and a tool call under
it), and their OTLP/JSON as the specification maps it."""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

MESSAGES_IN = [
    {"role": "user", "parts": [{"type": "text", "content": "Where is my refund for order 1182?"}]}
]
MESSAGES_OUT = [
    {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": "call_1",
                "name": "lookup-order",
                "arguments": {"order": "1182"},
            }
        ],
        "finish_reason": "tool_call",
    }
]


def make_spans(service_name: str, *, system_id: str | None = None) -> list[ReadableSpan]:
    """A request span with a chat call and a tool call under it, made by the SDK."""
    attributes: dict[str, Any] = {"service.name": service_name}
    if system_id:
        attributes["blastwall.system.id"] = system_id
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /chat", attributes={"http.route": "/chat"}):
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.conversation.id": "conv-42",
                    "user.id": "customer-7",
                    "gen_ai.input.messages": json.dumps(MESSAGES_IN),
                    "gen_ai.output.messages": json.dumps(MESSAGES_OUT),
                    "gen_ai.system_instructions": json.dumps(
                        [{"type": "text", "content": "You are a support assistant."}]
                    ),
                    "gen_ai.usage.input_tokens": 31,
                    "gen_ai.usage.output_tokens": 12,
                    "gen_ai.response.finish_reasons": ["tool_call"],
                }
            )
        with tracer.start_as_current_span("execute_tool lookup-order") as tool:
            tool.set_attributes(
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "lookup-order",
                    "gen_ai.tool.call.id": "call_1",
                    "gen_ai.tool.call.arguments": json.dumps({"order": "1182"}),
                    "gen_ai.tool.call.result": json.dumps({"status": "refunded"}),
                    "gen_ai.conversation.id": "conv-42",
                }
            )
    provider.shutdown()
    return list(memory.get_finished_spans())


def to_otlp_json(spans: list[ReadableSpan]) -> dict[str, Any]:
    """OTLP/JSON as the specification maps it: hex trace and span ids, not base64."""
    document: dict[str, Any] = MessageToDict(encode_spans(spans))

    def hexify(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    hexify(value)
        elif isinstance(node, list):
            for item in node:
                hexify(item)

    hexify(document)
    return document
