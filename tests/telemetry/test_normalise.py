"""GenAI spans of the four conventions normalised into interaction records."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blastwall.telemetry.normalise import (
    MAX_ATTRIBUTE_CHARS,
    OPERATIONS,
    normalise,
    system_id_hint,
    trim_attributes,
)
from blastwall.telemetry.otlp import MAX_DEPTH, DecodedSpan, SpanEvent
from blastwall.telemetry.redact import apply_content_policy

START = 1_750_000_000_123_456_789
END = START + 1_250_500_000
SYSTEM = "You are the support assistant of Example Retail.\nAnswer briefly."
RECORD_KEYS = {
    "trace_id", "span_id", "parent_span_id", "service_name", "name", "schema", "operation",
    "provider", "request_model", "response_model", "conversation_id", "user_id", "agent_name",
    "system_instructions", "system_instructions_hash", "input_messages", "output_messages",
    "tool_name", "tool_call_id", "tool_arguments", "tool_result", "data_source", "input_tokens",
    "output_tokens", "finish_reasons", "error_type", "start_time", "end_time", "latency_ms",
    "attributes",
}  # fmt: skip
SYSTEM_HASH = "sha256:" + hashlib.sha256(SYSTEM.encode()).hexdigest()


def span(
    attributes: dict[str, Any],
    events: list[SpanEvent] | None = None,
    *,
    name: str = "chat gpt-4o",
    status: int = 0,
) -> DecodedSpan:
    return DecodedSpan(
        resource={"service.name": "support-bot", "blastwall.system.id": "sys-42"},
        scope_name="test",
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id="eee19b7ec3c1b174",
        parent_span_id="eee19b7ec3c1b173",
        name=name,
        kind=3,
        start_ns=START,
        end_ns=END,
        status_code=status,
        status_message=None,
        attributes=attributes,
        events=events or [],
    )


def text(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


# The conversation every convention below describes: the user asks about an order, the model
# calls a tool, the tool answers, the model answers.
INPUT = [
    text("user", "Where is my order 123456?"),
    {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": "call_1",
                "name": "lookup_order",
                "arguments": {"order_id": "123456"},
            }
        ],
    },
    {
        "role": "tool",
        "parts": [
            {"type": "tool_call_response", "id": "call_1", "response": {"status": "shipped"}}
        ],
    },
]
OUTPUT = [{**text("assistant", "It has shipped and arrives Friday."), "finish_reason": "stop"}]
INSTRUCTIONS = [
    {"type": "text", "content": "You are the support assistant of Example Retail."},
    {"type": "text", "content": "Answer briefly."},
]
GENAI_137 = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.conversation.id": "conv-7",
    "user.id": "user-9",
    "gen_ai.usage.input_tokens": 52,
    "gen_ai.usage.output_tokens": 11,
    "gen_ai.response.finish_reasons": ["stop"],
    "server.address": "api.openai.com",
    "gen_ai.system_instructions": INSTRUCTIONS,
    "gen_ai.input.messages": INPUT,
    "gen_ai.output.messages": OUTPUT,
}


def check_complete(
    record: dict[str, Any] | None, schema: str, output: list[Any] = OUTPUT
) -> dict[str, Any]:
    assert record is not None
    assert set(record) == RECORD_KEYS
    assert record["schema"] == schema
    assert record["operation"] == "chat"
    assert record["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert record["span_id"] == "eee19b7ec3c1b174"
    assert record["parent_span_id"] == "eee19b7ec3c1b173"
    assert record["service_name"] == "support-bot"
    assert record["start_time"] == datetime(2025, 6, 15, 15, 6, 40, 123456, tzinfo=UTC)
    assert record["end_time"].tzinfo is UTC
    assert record["latency_ms"] == 1250.5
    assert record["input_messages"] == INPUT
    assert record["output_messages"] == output
    assert record["system_instructions_hash"] == SYSTEM_HASH
    assert record["finish_reasons"] == ["stop"]
    assert record["conversation_id"] == "conv-7"
    assert record["user_id"] == "user-9"
    assert record["input_tokens"] == 52
    assert record["output_tokens"] == 11
    assert record["provider"] == "openai"
    assert record["request_model"] == "gpt-4o"
    orjson.dumps(record)
    return record


def test_genai_137_structured() -> None:
    record = check_complete(normalise(span(GENAI_137)), "genai")
    assert record["response_model"] == "gpt-4o-2024-08-06"
    assert record["system_instructions"] == INSTRUCTIONS
    assert record["attributes"] == {
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.request.temperature": 0.2,
        "server.address": "api.openai.com",
    }
    assert record["error_type"] is None


def test_genai_137_json_strings_match_structured() -> None:
    as_json = dict(GENAI_137)
    for key in ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages"):
        as_json[key] = json.dumps(as_json[key])
    as_json["gen_ai.response.finish_reasons"] = '["stop"]'
    assert normalise(span(as_json)) == normalise(span(GENAI_137))


def test_genai_137_content_on_the_operation_details_event() -> None:
    attributes = {
        k: v for k, v in GENAI_137.items() if not k.startswith(("gen_ai.input", "gen_ai.output"))
    }
    del attributes["gen_ai.system_instructions"]
    details = {
        "gen_ai.input.messages": json.dumps(INPUT),
        "gen_ai.output.messages": json.dumps(OUTPUT),
        "gen_ai.system_instructions": json.dumps(INSTRUCTIONS),
    }
    event = SpanEvent("gen_ai.client.inference.operation.details", START, details)
    check_complete(normalise(span(attributes, [event])), "genai")


def test_genai_events_130_to_136() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.conversation.id": "conv-7",
        "enduser.id": "user-9",
        "gen_ai.usage.prompt_tokens": 52,
        "gen_ai.usage.completion_tokens": 11,
    }
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": '{"order_id": "123456"}'},
    }
    events = [
        SpanEvent("gen_ai.system.message", START, {"gen_ai.system": "openai", "content": SYSTEM}),
        SpanEvent("gen_ai.user.message", START, {"content": "Where is my order 123456?"}),
        SpanEvent("gen_ai.assistant.message", START, {"tool_calls": json.dumps([tool_call])}),
        SpanEvent(
            "gen_ai.tool.message", START, {"content": '{"status": "shipped"}', "id": "call_1"}
        ),
        SpanEvent(
            "gen_ai.choice",
            END,
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "It has shipped and arrives Friday."},
            },
        ),
    ]
    record = check_complete(normalise(span(attributes, events)), "genai_events")
    assert record["system_instructions"] == [{"type": "text", "content": SYSTEM}]
    assert record["attributes"] is None


def test_genai_events_with_a_json_body() -> None:
    """Semantic Kernel style: the event body as a JSON string in gen_ai.event.content."""
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.system": "azure_openai"}
    body = {"role": "user", "content": "Hi there"}
    choice = {"index": 0, "finish_reason": "stop", "message": {"content": "Hello!"}}
    events = [
        SpanEvent("gen_ai.user.message", START, {"gen_ai.event.content": json.dumps(body)}),
        SpanEvent("gen_ai.choice", END, {"gen_ai.event.content": json.dumps(choice)}),
    ]
    record = normalise(span(attributes, events))
    assert record is not None
    assert record["schema"] == "genai_events"
    assert record["input_messages"] == [text("user", "Hi there")]
    assert record["output_messages"] == [{**text("assistant", "Hello!"), "finish_reason": "stop"}]
    assert record["finish_reasons"] == ["stop"]


def test_openllmetry_flat_attributes() -> None:
    attributes = {
        "llm.request.type": "chat",
        "gen_ai.system": "OpenAI",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": SYSTEM,
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Where is my order 123456?",
        "gen_ai.prompt.2.role": "assistant",
        "gen_ai.prompt.2.tool_calls.0.id": "call_1",
        "gen_ai.prompt.2.tool_calls.0.name": "lookup_order",
        "gen_ai.prompt.2.tool_calls.0.arguments": '{"order_id": "123456"}',
        "gen_ai.prompt.3.role": "tool",
        "gen_ai.prompt.3.content": '{"status": "shipped"}',
        "gen_ai.prompt.3.tool_call_id": "call_1",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "It has shipped and arrives Friday.",
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.usage.prompt_tokens": 52,
        "gen_ai.usage.completion_tokens": 11,
        "llm.usage.total_tokens": 63,
        "llm.is_streaming": False,
        "traceloop.association.properties.session_id": "conv-7",
        "traceloop.association.properties.user_id": "user-9",
        "traceloop.association.properties.tenant": "acme",
    }
    record = check_complete(normalise(span(attributes, name="openai.chat")), "openllmetry")
    assert record["attributes"] == {
        "llm.usage.total_tokens": 63,
        "llm.is_streaming": False,
        "traceloop.association.properties.tenant": "acme",
    }


def test_openllmetry_tool_calls_in_the_completion() -> None:
    attributes = {
        "llm.request.type": "chat",
        "gen_ai.system": "Anthropic",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": '[{"type": "text", "text": "Weather in Paris?"}]',
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.finish_reason": "tool_use",
        "gen_ai.completion.0.tool_calls.0.id": "toolu_1",
        "gen_ai.completion.0.tool_calls.0.name": "get_weather",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
        "gen_ai.completion.0.tool_calls.1.id": "toolu_2",
        "gen_ai.completion.0.tool_calls.1.name": "get_time",
        "gen_ai.completion.0.tool_calls.1.arguments": "{}",
    }
    record = normalise(span(attributes))
    assert record is not None
    assert record["provider"] == "anthropic"
    assert record["input_messages"] == [text("user", "Weather in Paris?")]
    assert record["output_messages"] == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "arguments": {"city": "Paris"},
                },
                {"type": "tool_call", "id": "toolu_2", "name": "get_time", "arguments": {}},
            ],
            "finish_reason": "tool_use",
        }
    ]
    assert record["finish_reasons"] == ["tool_use"]


CALL = "llm.input_messages.2.message.tool_calls.0.tool_call"


def test_openinference() -> None:
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "Where is my order 123456?",
        "llm.input_messages.2.message.role": "assistant",
        f"{CALL}.function.arguments": '{"order_id": "123456"}',
        f"{CALL}.function.name": "lookup_order",
        f"{CALL}.id": "call_1",
        "llm.input_messages.3.message.role": "tool",
        "llm.input_messages.3.message.tool_call_id": "call_1",
        "llm.input_messages.3.message.content": '{"status": "shipped"}',
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "It has shipped and arrives Friday.",
        "llm.token_count.prompt": 52,
        "llm.token_count.completion": 11,
        "llm.token_count.total": 63,
        "llm.finish_reason": "stop",
        "session.id": "conv-7",
        "user.id": "user-9",
        "input.value": '{"messages": ["... the raw request ..."]}',
        "input.mime_type": "application/json",
        "output.value": "It has shipped and arrives Friday.",
        "llm.invocation_parameters": '{"temperature": 0.2}',
        "llm.tools.0.tool.json_schema": '{"type": "function", "function": {"name": "lookup"}}',
        "llm.tools.0.tool.description": "Looks an order up.",
    }
    output = [text("assistant", "It has shipped and arrives Friday.")]  # reason on the span
    record = check_complete(normalise(span(attributes)), "openinference", output)
    assert record["response_model"] == "gpt-4o"
    assert record["attributes"] == {
        "llm.token_count.total": 63,
        "llm.invocation_parameters": '{"temperature": 0.2}',
    }


def test_tool_execution_genai_137() -> None:
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup_order",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": "call_1",
        "gen_ai.tool.call.arguments": '{"order_id": "123456"}',
        "gen_ai.tool.call.result": '{"status": "shipped"}',
        "gen_ai.conversation.id": "conv-7",
    }
    record = normalise(span(attributes, name="execute_tool lookup_order"))
    assert record is not None
    assert record["operation"] == "execute_tool"
    assert (record["tool_name"], record["tool_call_id"]) == ("lookup_order", "call_1")
    assert record["tool_arguments"] == {"order_id": "123456"}
    assert record["tool_result"] == {"status": "shipped"}
    assert record["input_messages"] is None
    assert record["attributes"] == {"gen_ai.tool.type": "function"}


@pytest.mark.parametrize(
    ("attributes", "name", "arguments", "result"),
    [
        (
            {
                "openinference.span.kind": "TOOL",
                "tool.name": "lookup_order",
                "input.value": '{"order_id": "123456"}',
                "output.value": "shipped",
            },
            "lookup_order",
            {"order_id": "123456"},
            "shipped",
        ),
        (
            {
                "traceloop.span.kind": "tool",
                "traceloop.entity.name": "lookup_order",
                "traceloop.entity.input": '{"args": [], "kwargs": {"order_id": "123456"}}',
                "traceloop.entity.output": '"shipped"',
            },
            "lookup_order",
            {"args": [], "kwargs": {"order_id": "123456"}},
            '"shipped"',
        ),
    ],
    ids=["openinference", "openllmetry"],
)
def test_tool_execution_other_conventions(
    attributes: dict[str, Any], name: str, arguments: Any, result: Any
) -> None:
    record = normalise(span(attributes))
    assert record is not None
    assert record["operation"] == "execute_tool"
    assert (record["tool_name"], record["tool_arguments"], record["tool_result"]) == (
        name,
        arguments,
        result,
    )
    assert record["attributes"] is None


def test_retrieval() -> None:
    openinference = {
        "openinference.span.kind": "RETRIEVER",
        "input.value": "refund policy",
        "retrieval.documents.0.document.id": "doc-1",
        "retrieval.documents.0.document.content": "Refunds within 30 days.",
        "retrieval.documents.0.document.score": 0.92,
        "retrieval.documents.1.document.id": "doc-2",
        "retrieval.documents.1.document.content": "Keep the receipt.",
    }
    record = normalise(span(openinference))
    assert record is not None
    assert record["operation"] == "retrieval"
    assert record["tool_arguments"] == "refund policy"
    assert record["tool_result"] == [
        {"id": "doc-1", "content": "Refunds within 30 days.", "score": 0.92},
        {"id": "doc-2", "content": "Keep the receipt."},
    ]
    genai = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": "kb-main",
        "gen_ai.retrieval.query.text": "refund policy",
        "gen_ai.retrieval.documents": '[{"id": "doc-1", "score": 0.92}]',
    }
    record = normalise(span(genai))
    assert record is not None
    assert (record["data_source"], record["tool_arguments"]) == ("kb-main", "refund policy")
    assert record["tool_result"] == [{"id": "doc-1", "score": 0.92}]


@pytest.mark.parametrize(
    ("attributes", "operation"),
    [
        ({"openinference.span.kind": "AGENT", "input.value": "hi"}, "invoke_agent"),
        ({"openinference.span.kind": "CHAIN"}, "invoke_workflow"),
        ({"openinference.span.kind": "EMBEDDING"}, "embeddings"),
        ({"openinference.span.kind": "GUARDRAIL"}, "apply_guardrail"),
        ({"traceloop.span.kind": "workflow"}, "invoke_workflow"),
        ({"traceloop.span.kind": "agent", "traceloop.entity.name": "planner"}, "invoke_agent"),
        ({"traceloop.span.kind": "task", "gen_ai.prompt.0.content": "x"}, "chat"),
        ({"llm.request.type": "completion"}, "text_completion"),
        ({"llm.request.type": "embedding"}, "embeddings"),
        ({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}, "invoke_agent"),
    ],
)
def test_operation_mapping(attributes: dict[str, Any], operation: str) -> None:
    record = normalise(span(attributes))
    assert record is not None
    assert record["operation"] == operation
    assert operation in OPERATIONS


def test_agent_span_input_and_output_become_messages() -> None:
    attributes = {
        "traceloop.span.kind": "agent",
        "traceloop.entity.name": "planner",
        "traceloop.entity.input": '{"inputs": {"question": "Where is my order?"}}',
        "traceloop.entity.output": '{"outputs": "It shipped."}',
    }
    record = normalise(span(attributes))
    assert record is not None
    assert record["agent_name"] == "planner"
    assert record["input_messages"] == [
        text("user", '{"inputs": {"question": "Where is my order?"}}')
    ]
    assert record["output_messages"] == [text("assistant", '{"outputs": "It shipped."}')]


@pytest.mark.parametrize(
    "attributes",
    [
        {"http.request.method": "GET", "url.path": "/health", "http.response.status_code": 200},
        {"db.system.name": "postgresql", "db.query.text": "SELECT 1"},
        {"traceloop.span.kind": "task", "traceloop.entity.name": "format_answer"},
        {"openinference.span.kind": "EVALUATOR"},
        {"gen_ai.operation.name": ""},
        {},
    ],
)
def test_non_genai_spans_are_not_interactions(attributes: dict[str, Any]) -> None:
    assert normalise(span(attributes, [SpanEvent("exception", START, {})])) is None


def test_system_instructions_hash_is_stable_across_conventions() -> None:
    as_json = {**GENAI_137, "gen_ai.system_instructions": json.dumps(INSTRUCTIONS)}
    from_system_message = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": [text("system", SYSTEM), text("user", "hi")],
    }
    hashes = {
        normalise(span(GENAI_137))["system_instructions_hash"],  # type: ignore[index]
        normalise(span(as_json))["system_instructions_hash"],  # type: ignore[index]
        normalise(span(from_system_message))["system_instructions_hash"],  # type: ignore[index]
    }
    assert hashes == {SYSTEM_HASH}
    moved = normalise(span(from_system_message))
    assert moved is not None
    assert moved["input_messages"] == [text("user", "hi")]
    no_instructions = normalise(span({"gen_ai.operation.name": "chat"}))
    assert no_instructions is not None
    assert no_instructions["system_instructions_hash"] is None


def test_errors_and_system_hint() -> None:
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    exception = SpanEvent("exception", END, {"exception.type": "openai.RateLimitError"})
    record = normalise(span(attributes, [exception], status=2))
    assert record is not None
    assert record["error_type"] == "openai.RateLimitError"
    record = normalise(span({**attributes, "error.type": "timeout"}, status=2))
    assert record is not None
    assert record["error_type"] == "timeout"
    record = normalise(span(attributes, status=2))
    assert record is not None
    assert record["error_type"] == "_OTHER"
    assert system_id_hint(span(attributes)) == "sys-42"


def test_leftover_attributes_stay_small() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.tool.definitions": "x" * 50_000,
        "custom.blob": "y" * 5000,
        "custom.small": "z",
    }
    record = normalise(span(attributes))
    assert record is not None
    assert record["attributes"] == {
        "custom.blob": "[5000 characters omitted]",
        "custom.small": "z",
    }
    assert len("[5000 characters omitted]") < MAX_ATTRIBUTE_CHARS


def nested(levels: int) -> Any:
    """A value with `levels` levels of lists and dicts around a string."""
    value: Any = "leaf"
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


def test_trim_attributes_keeps_context_attributes_small() -> None:
    statement = "SELECT * FROM orders WHERE id IN (" + "1, " * 34_000 + "1)"
    attributes = {
        "db.system": "postgresql",
        "db.statement": statement,
        "db.rows": 3,
        "http.ok": True,
        "ratio": 0.5,
        "exact": "x" * MAX_ATTRIBUTE_CHARS,
        "tags": ["a", "b"],
        "headers": {"accept": "application/json"},
        "gen_ai.prompt.0.content": "not a GenAI span: kept as it is",
        "llm.tools.0.name": "kept too",
        "empty": "",
        "none": None,
    }
    original = dict(attributes)
    trimmed = trim_attributes(attributes)
    assert len(statement) > 100_000
    assert trimmed == {
        **attributes,
        "db.statement": f"[{len(statement)} characters omitted]",
    }
    assert attributes == original  # the input is not changed


def test_trim_attributes_of_nothing_is_none() -> None:
    assert trim_attributes({}) is None


def test_trim_attributes_lets_nothing_deeper_than_max_depth_through() -> None:
    trimmed = trim_attributes({"ok": nested(MAX_DEPTH), "deep": nested(MAX_DEPTH + 1)})
    assert trimmed is not None
    assert trimmed["ok"] == nested(MAX_DEPTH)
    assert trimmed["deep"] == f"[value nested deeper than {MAX_DEPTH} levels]"
    orjson.dumps(trimmed)


def test_trim_attributes_follows_the_rules_for_leftover_attributes() -> None:
    leftover = {
        "custom.blob": "y" * 5000,
        "custom.small": "z",
        "custom.list": [1, 2, 3],
        "custom.deep": nested(MAX_DEPTH + 5),
    }
    record = normalise(span({"gen_ai.operation.name": "chat", **leftover}))
    assert record is not None
    assert record["attributes"] == trim_attributes(leftover)
    assert record["attributes"]["custom.deep"] == f"[value nested deeper than {MAX_DEPTH} levels]"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=20),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=2 * MAX_ATTRIBUTE_CHARS),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=8,
    )
)
def test_trim_attributes_keeps_every_key_and_short_strings(attributes: dict[str, Any]) -> None:
    trimmed = trim_attributes(attributes)
    if not attributes:
        assert trimmed is None
        return
    assert trimmed is not None
    assert trimmed.keys() == attributes.keys()
    for key, value in attributes.items():
        if type(value) is str and len(value) > MAX_ATTRIBUTE_CHARS:
            assert trimmed[key] == f"[{len(value)} characters omitted]"
        else:
            assert trimmed[key] == value


def test_unparseable_json_content_is_kept_as_text() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": "[{not json",
        "gen_ai.output.messages": "plain answer",
        "gen_ai.tool.call.arguments": "{broken",
    }
    record = normalise(span(attributes))
    assert record is not None
    assert record["input_messages"] == [text("user", "[{not json")]
    assert record["output_messages"] == [text("assistant", "plain answer")]
    assert record["tool_arguments"] == "{broken"


def test_deeply_nested_json_content_is_not_let_through() -> None:
    deep = "[" * 900 + "]" * 900
    part = f'{{"type": "tool_call", "arguments": {deep}, "id": {deep}, "name": {deep}}}'
    message = f'[{{"role": "user", "parts": [{part}]}}]'
    output = f'[{{"role": {deep}, "parts": [{{"type": {deep}}}], "finish_reason": {deep}}}]'
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": message,
        "gen_ai.output.messages": output,
        "gen_ai.system_instructions": f'[{{"type": "text", "content": {deep}}}]',
        "gen_ai.tool.call.result": deep,
        "gen_ai.response.finish_reasons": "[" + deep + "]",
    }
    record = normalise(span(attributes))
    assert record is not None
    assert record["tool_result"] == deep  # kept as the text it was sent as
    assert "nested deeper" in record["input_messages"][0]["parts"][0]["arguments"]
    orjson.dumps(record)
    for policy in ("redacted", "hashes"):
        orjson.dumps(apply_content_policy(record, policy))


GENAI_KEYS = st.sampled_from(
    [
        "gen_ai.operation.name", "gen_ai.input.messages", "gen_ai.output.messages",
        "gen_ai.system_instructions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
        "gen_ai.response.finish_reasons", "gen_ai.usage.input_tokens", "gen_ai.prompt.0.content",
        "gen_ai.prompt.0.role", "gen_ai.completion.0.tool_calls.0.arguments",
        "llm.input_messages.0.message.content", "llm.input_messages.x.message.role",
        "openinference.span.kind", "llm.request.type", "traceloop.span.kind", "input.value",
        "retrieval.documents.0.document.content", "gen_ai.retrieval.documents", "user.id",
        "error.type", "gen_ai.provider.name", "traceloop.entity.input", "embedding.embeddings.0.x",
    ]
)  # fmt: skip
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["chat", "LLM", "TOOL", "RETRIEVER", "tool", "agent", "system", "user", "[{", "[]", "{}"]
    )
    | st.builds(json.dumps, st.lists(st.dictionaries(st.sampled_from(["role", "parts", "type",
        "content", "tool_calls", "arguments", "text"]), st.text(max_size=5) | st.integers())))
    ,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["role", "parts", "type", "content", "id"]), children),
    max_leaves=25,
)  # fmt: skip
EVENT_NAMES = st.sampled_from(
    ["gen_ai.user.message", "gen_ai.choice", "gen_ai.tool.message", "exception", "other",
     "gen_ai.client.inference.operation.details", "gen_ai.content.prompt"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(GENAI_KEYS, VALUES, max_size=8),
    st.lists(
        st.builds(
            SpanEvent,
            EVENT_NAMES,
            st.just(START),
            st.dictionaries(
                GENAI_KEYS | st.sampled_from(["content", "message", "body", "index", "tool_calls"]),
                VALUES,
            ),
        ),
        max_size=3,
    ),
    st.integers(0, 2),
)
def test_fuzz_normalise_never_raises(
    attributes: dict[str, Any], events: list[SpanEvent], status: int
) -> None:
    record = normalise(span(attributes, events, status=status))
    if record is not None:
        assert set(record) == RECORD_KEYS
        orjson.dumps(record)
        for policy in ("full", "redacted", "hashes"):
            orjson.dumps(apply_content_policy(record, policy))


def test_spans_of_the_real_openai_instrumentation(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: the OpenTelemetry OpenAI instrumentation (latest GenAI conventions, content on
    the span), the SDK's OTLP protobuf encoder, then decode_protobuf and normalise."""
    httpx = pytest.importorskip("httpx")
    openai = pytest.importorskip("openai")
    openai_v2 = pytest.importorskip("opentelemetry.instrumentation.openai_v2")
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from blastwall.telemetry.otlp import decode_protobuf

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "It has shipped and arrives Friday."},
            }
        ],
        "usage": {"prompt_tokens": 52, "completion_tokens": 11, "total_tokens": 63},
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    client = openai.OpenAI(api_key="test", http_client=httpx.Client(transport=transport))
    instrumentor = openai_v2.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client.chat.completions.create(
            model="gpt-4o",
            messages=[
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Where is my order 123456?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "lookup_order",
                                "arguments": '{"order_id": "123456"}',
                            },
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
            ],
        )
    finally:
        instrumentor.uninstrument()
    decoded = decode_protobuf(encode_spans(exporter.get_finished_spans()).SerializeToString())
    [record] = [normalise(s) for s in decoded.spans]
    assert record is not None
    assert (record["schema"], record["operation"], record["provider"]) == (
        "genai",
        "chat",
        "openai",
    )
    assert (record["request_model"], record["response_model"]) == ("gpt-4o", "gpt-4o-2024-08-06")
    assert record["system_instructions_hash"] == SYSTEM_HASH
    assert record["input_messages"][0] == text("user", "Where is my order 123456?")
    assert record["input_messages"][1]["parts"][0]["name"] == "lookup_order"
    assert record["input_messages"][2]["parts"][0]["type"] == "tool_call_response"
    assert record["output_messages"] == OUTPUT
    assert (record["input_tokens"], record["output_tokens"]) == (52, 11)
    assert record["finish_reasons"] == ["stop"]


def test_the_applications_version_and_environment_are_kept() -> None:
    decoded = span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"})
    decoded.resource.update(
        {"service.version": "2.1.0", "deployment.environment.name": "production"}
    )
    record = normalise(decoded)
    assert record is not None and record["attributes"] is not None
    assert record["attributes"]["service.version"] == "2.1.0"
    assert record["attributes"]["deployment.environment.name"] == "production"


@pytest.mark.parametrize("count", [1.8446744073709552e19, 2**40, -(2**63), "99999999999"])
def test_a_token_count_that_fits_no_integer_column_is_dropped(count: Any) -> None:
    record = normalise(span({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": count}))
    assert record is not None
    assert record["input_tokens"] is None
    orjson.dumps(record)
