"""OTLP/JSON trace documents built by hand, for tests that send GenAI spans."""

from __future__ import annotations

import secrets
import time
from typing import Any


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": str(value)}


def attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items()]


def span(
    attrs: dict[str, Any],
    *,
    name: str = "chat gpt-4o",
    trace_id: str | None = None,
    start_ns: int | None = None,
    duration_ms: float = 800.0,
) -> dict[str, Any]:
    start = start_ns if start_ns is not None else time.time_ns()
    return {
        "traceId": trace_id or secrets.token_hex(16),
        "spanId": secrets.token_hex(8),
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + int(duration_ms * 1e6)),
        "attributes": attributes(attrs),
    }


def document(service_name: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes({"service.name": service_name})},
                "scopeSpans": [{"scope": {"name": "tests"}, "spans": spans}],
            }
        ]
    }


def chat(user: str, answer: str, **extra: Any) -> dict[str, Any]:
    """The attributes of a chat span in the GenAI 1.37 shape."""
    import json

    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": user}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": answer}],
                    "finish_reason": "stop",
                }
            ]
        ),
        **extra,
    }


def tool(name: str, arguments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The attributes of an execute_tool span."""
    import json

    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": "call_" + secrets.token_hex(4),
        "gen_ai.tool.call.arguments": json.dumps(arguments),
        "gen_ai.tool.call.result": json.dumps({"ok": True}),
        **extra,
    }
