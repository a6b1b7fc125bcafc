"""One decoded GenAI span, whatever convention produced it, as one interaction record.

Four conventions are read, and the record says which one matched (`schema`):

* ``genai``: OpenTelemetry GenAI semantic conventions 1.37 and later (`gen_ai.provider.name`,
  `gen_ai.input.messages` / `gen_ai.output.messages` / `gen_ai.system_instructions`, either
  structured values or JSON strings, the `gen_ai.client.inference.operation.details` event).
* ``genai_events``: GenAI 1.30-1.36 (`gen_ai.system`, content on the span events
  `gen_ai.{system,user,assistant,tool}.message` and `gen_ai.choice`, read from attributes,
  a `body` attribute or a `gen_ai.event.content` JSON string; also the 1.26-1.29 events
  `gen_ai.content.prompt` / `gen_ai.content.completion`).
* ``openllmetry``: Traceloop's flat `gen_ai.prompt.N.*` / `gen_ai.completion.N.*`,
  `llm.request.type`, `traceloop.span.kind`, `traceloop.entity.*`, association properties.
* ``openinference``: Arize's `openinference.span.kind`, `llm.input_messages.N.message.*`,
  `input.value` / `output.value`, `retrieval.documents.N.document.*`, `tool.*`.

Messages come out in the GenAI 1.37 shape (`{"role", "parts": [...], "finish_reason"}`).
Leading system messages of the input are moved into `system_instructions` when the span has
no separate instructions. JSON strings that do not parse (or nest deeper than `MAX_DEPTH`)
are kept as text. A retrieval's query goes to `tool_arguments` and its documents to
`tool_result`. Span attributes read into the record, and the big content-like attributes
(tool definitions, prompt templates, embedding vectors), are left out of `attributes`; any
other string over `MAX_ATTRIBUTE_CHARS` is replaced there by a note of its length.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from blastwall.telemetry.otlp import MAX_DEPTH, DecodedSpan, SpanEvent

__all__ = ["MAX_ATTRIBUTE_CHARS", "OPERATIONS", "normalise", "system_id_hint"]

OPERATIONS = (
    "chat",
    "text_completion",
    "embeddings",
    "retrieval",
    "execute_tool",
    "invoke_agent",
    "create_agent",
    "invoke_workflow",
    "apply_guardrail",
    "generate_content",
)
MAX_ATTRIBUTE_CHARS = 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAIL = object()
_OI_OPERATIONS = {
    "LLM": "chat",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
    "EMBEDDING": "embeddings",
    "GUARDRAIL": "apply_guardrail",
    "CHAIN": "invoke_workflow",
}
_REQUEST_TYPES = {
    "chat": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
    "rerank": "retrieval",
}
_TRACELOOP_KINDS = {"workflow": "invoke_workflow", "agent": "invoke_agent", "tool": "execute_tool"}
_ROLES = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "developer": "system",
    "human": "user",
    "model": "assistant",
    "ai": "assistant",
    "function": "tool",
    "ipython": "tool",
}
_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_CONTENT_EVENTS = frozenset(
    [
        *_EVENT_ROLES,
        "gen_ai.choice",
        "gen_ai.client.inference.operation.details",
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
    ]
)
_NEW_GENAI_KEYS = (
    "gen_ai.provider.name",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)
_FLAT_PROMPT_KEYS = (
    "gen_ai.prompt.0.content",
    "gen_ai.prompt.0.role",
    "gen_ai.prompt.0.user",
    "gen_ai.completion.0.content",
    "gen_ai.completion.0.role",
)
# Attributes read into the record (or dropped as big content): never copied to `attributes`.
_CONSUMED = frozenset(
    """gen_ai.operation.name gen_ai.provider.name gen_ai.system gen_ai.request.model
    gen_ai.response.model gen_ai.input.messages gen_ai.output.messages gen_ai.system_instructions
    gen_ai.conversation.id gen_ai.agent.name gen_ai.agent.id gen_ai.tool.name gen_ai.tool.call.id
    gen_ai.tool.call.arguments gen_ai.tool.call.result gen_ai.data_source.id
    gen_ai.usage.input_tokens gen_ai.usage.output_tokens gen_ai.usage.prompt_tokens
    gen_ai.usage.completion_tokens gen_ai.response.finish_reasons error.type user.id enduser.id
    gen_ai.retrieval.query.text gen_ai.retrieval.documents gen_ai.prompt gen_ai.completion
    gen_ai.tool.definitions openinference.span.kind llm.model_name llm.request.model_name
    llm.response.model_name llm.provider llm.system input.value output.value input.mime_type
    output.mime_type llm.token_count.prompt llm.token_count.completion llm.finish_reason
    tool.name tool.id tool_call.id session.id agent.name embedding.model_name llm.prompts
    llm.prompt_template.template llm.prompt_template.variables llm.request.type llm.user
    traceloop.span.kind traceloop.entity.input traceloop.entity.output
    traceloop.prompt.template traceloop.prompt.template_variables
    traceloop.association.properties.session_id traceloop.association.properties.user_id
    traceloop.association.properties.conversation_id""".split()
)
_INDEXED = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
    "retrieval.documents.",
    "embedding.embeddings.",
)
_DROPPED_PREFIXES = ("llm.tools.", "llm.request.functions.", "reranker.")
_INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
_OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)


def system_id_hint(span: DecodedSpan) -> str | None:
    """The `blastwall.system.id` resource attribute, when the sender set one."""
    value = span.resource.get("blastwall.system.id")
    return value if type(value) is str and value else None


def _str(value: Any, limit: int = 200) -> str | None:
    if type(value) is str:
        return value[:limit] if value else None
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)[:limit]


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is str and 0 < len(value) <= 18 and value.isascii() and value.isdigit():
        return int(value)
    return None


def _first(attrs: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _too_deep(value: Any, depth: int) -> bool:
    if depth > MAX_DEPTH:
        return True
    if type(value) is list:
        return any(type(v) in (list, dict) and _too_deep(v, depth + 1) for v in value)
    if type(value) is dict:
        return any(type(v) in (list, dict) and _too_deep(v, depth + 1) for v in value.values())
    return False


def _loads(text: str) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _FAIL
    if text.count("{") + text.count("[") > MAX_DEPTH and _too_deep(value, 1):
        return _FAIL
    return value


def _maybe_json(value: Any) -> Any:
    """A JSON object/array string parsed; anything else (or unparseable) as given."""
    if type(value) is str and value[:1] in ("{", "["):
        parsed = _loads(value)
        if parsed is not _FAIL:
            return parsed
    return value


def _as_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return str(value)


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        content = part.get("content")
        if type(content) is str and len(part) == 2:
            return part
        if content is None:
            content = part.get("text")
        return _text(content if type(content) is str else _as_text(content))
    if kind == "tool_call":
        return {
            "type": "tool_call",
            "id": part.get("id"),
            "name": part.get("name"),
            "arguments": _maybe_json(part.get("arguments")),
        }
    if kind == "tool_call_response":
        response = part["response"] if "response" in part else part.get("result")
        return {"type": "tool_call_response", "id": part.get("id"), "response": response}
    if kind is None and type(part.get("text")) is str:
        return _text(part["text"])
    return part


def _content_parts(content: Any) -> list[dict[str, Any]]:
    """Message content (a string, a JSON list of parts, a list of parts) as 1.37 parts."""
    if type(content) is str:
        if content[:2] == "[{":
            parsed = _loads(content)
            if type(parsed) is list and all(type(p) is dict and "type" in p for p in parsed):
                return [_part(p) for p in parsed]
        return [_text(content)] if content else []
    if type(content) is list:
        return [_part(p) if type(p) is dict else _text(str(p)) for p in content if p is not None]
    if type(content) is dict:
        return [_part(content)]
    return [] if content is None else [_text(str(content))]


def _role(value: Any, default: str) -> str:
    return _ROLES.get(value.lower(), default) if type(value) is str else default


def _tool_calls(value: Any) -> list[dict[str, Any]]:
    if type(value) is str:
        value = _loads(value)
    if type(value) is dict:
        value = [value]
    if type(value) is not list:
        return []
    calls = []
    for call in value:
        if type(call) is not dict:
            continue
        function = call.get("function")
        source = function if type(function) is dict else call
        calls.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": source.get("name"),
                "arguments": _maybe_json(source.get("arguments")),
            }
        )
    return calls


def _chat_message(msg: dict[str, Any], default_role: str, output: bool) -> dict[str, Any]:
    """An OpenAI-style message (content, tool_calls, tool_call_id) in the 1.37 shape."""
    role = _role(msg.get("role"), default_role)
    content = msg.get("content")
    if role == "tool":
        call_id = msg.get("tool_call_id", msg.get("id"))
        parts = [{"type": "tool_call_response", "id": call_id, "response": content}]
    else:
        parts = _content_parts(content)
        parts.extend(_tool_calls(msg.get("tool_calls")))
        function_call = msg.get("function_call")
        if type(function_call) is dict:
            parts.extend(_tool_calls(function_call))
    message: dict[str, Any] = {"role": role, "parts": parts}
    reason = msg.get("finish_reason")
    if output and reason:
        message["finish_reason"] = str(reason)
    return message


def _message(msg: Any, default_role: str, output: bool) -> dict[str, Any] | None:
    if type(msg) is not dict:
        return None if msg is None else {"role": default_role, "parts": _content_parts(msg)}
    parts = msg.get("parts")
    if type(parts) is not list:
        return _chat_message(msg, default_role, output)
    message: dict[str, Any] = {
        "role": _role(msg.get("role"), default_role),
        "parts": [_part(p) if type(p) is dict else _text(str(p)) for p in parts],
    }
    reason = msg.get("finish_reason")
    if output and reason:
        message["finish_reason"] = str(reason)
    return message


def _messages(value: Any, default_role: str, output: bool) -> list[dict[str, Any]] | None:
    """A messages attribute (structured or JSON string) in the 1.37 shape."""
    if value is None:
        return None
    if type(value) is str:
        parsed = _loads(value)
        if parsed is _FAIL or type(parsed) not in (list, dict):
            return [{"role": default_role, "parts": [_text(value)]}] if value else None
        value = parsed
    if type(value) is not list:
        value = [value]
    out = [m for m in (_message(item, default_role, output) for item in value) if m is not None]
    return out or None


def _instructions(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if type(value) is str:
        parsed = _loads(value)
        if type(parsed) not in (list, dict):
            return [_text(value)] if value else None
        value = parsed
    parts = _content_parts(value)
    return parts or None


def _flat_message(fields: dict[str, Any], default_role: str, output: bool) -> dict[str, Any]:
    """A message flattened into `role`, `content`, `tool_calls.N.*`, `contents.N.*` keys
    (OpenLLMetry, or OpenInference with the `message.` prefix removed)."""
    msg: dict[str, Any] = {}
    calls: dict[int, dict[str, Any]] = {}
    contents: dict[int, dict[str, Any]] = {}
    for name, value in fields.items():
        name = name.removeprefix("message.")
        if name.startswith(("tool_calls.", "contents.")):
            group, index, sub = (name.split(".", 2) + ["", ""])[:3]
            if not index.isdigit():
                continue
            sub = sub.removeprefix("tool_call.").removeprefix("function.")
            sub = sub.removeprefix("message_content.")
            target = calls if group == "tool_calls" else contents
            target.setdefault(int(index), {})[sub] = value
        elif name == "user":
            msg["content"] = value
        elif name in ("function_call.name", "function_call_name"):
            msg["function_call"] = {**msg.get("function_call", {}), "name": value}
        elif name in ("function_call.arguments", "function_call_arguments_json"):
            msg["function_call"] = {**msg.get("function_call", {}), "arguments": value}
        else:
            msg[name] = value
    if contents and msg.get("content") is None:
        msg["content"] = [contents[i] for i in sorted(contents)]
    if calls:
        msg["tool_calls"] = [calls[i] for i in sorted(calls)]
    return _chat_message(msg, default_role, output)


def _indexed(bucket: dict[int, dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [bucket[i] for i in sorted(bucket)] if bucket else []


def _event_body(attrs: dict[str, Any]) -> dict[str, Any]:
    for key in ("gen_ai.event.content", "body", "event.body"):
        body = attrs.get(key)
        if type(body) is str:
            body = _loads(body)
        if type(body) is dict:
            return body
    return attrs


def _from_events(events: list[SpanEvent], into: dict[str, Any]) -> str | None:
    """Reads content events into `into` (input/output/instructions); returns the
    exception type of an `exception` event, if any."""
    inputs: list[dict[str, Any]] = []
    choices: list[tuple[int, dict[str, Any]]] = []
    exception_type = None
    for event in events:
        name = event.name
        if name == "exception":
            exception_type = exception_type or _str(event.attributes.get("exception.type"))
        elif name not in _CONTENT_EVENTS:
            continue
        elif name in _EVENT_ROLES:
            inputs.append(_chat_message(_event_body(event.attributes), _EVENT_ROLES[name], False))
        elif name == "gen_ai.choice":
            body = _event_body(event.attributes)
            message = body.get("message")
            if type(message) is str:
                message = _loads(message)
            message = dict(message) if type(message) is dict else dict(body)
            if message.get("finish_reason") is None:
                message["finish_reason"] = body.get("finish_reason")
            index = _int(body.get("index"))
            choices.append((index or 0, _chat_message(message, "assistant", True)))
        elif name == "gen_ai.client.inference.operation.details":
            attrs = event.attributes
            into["input"] = _messages(attrs.get("gen_ai.input.messages"), "user", False)
            into["output"] = _messages(attrs.get("gen_ai.output.messages"), "assistant", True)
            into["instructions"] = _instructions(attrs.get("gen_ai.system_instructions"))
        elif name == "gen_ai.content.prompt":
            into["input"] = _messages(event.attributes.get("gen_ai.prompt"), "user", False)
        else:
            into["output"] = _messages(event.attributes.get("gen_ai.completion"), "assistant", True)
    if inputs and not into.get("input"):
        into["input"] = inputs
    if choices and not into.get("output"):
        choices.sort(key=lambda item: item[0])
        into["output"] = [message for _, message in choices]
    return exception_type


def _documents(value: Any) -> list[Any] | None:
    if type(value) is str:
        value = _maybe_json(value)
    if type(value) is list:
        return [_documents_item(doc) for doc in value]
    return None if value is None else [value]


def _documents_item(doc: Any) -> Any:
    if type(doc) is not dict:
        return doc
    return {key.removeprefix("document."): value for key, value in doc.items()}


def _text_message(value: Any, role: str) -> list[dict[str, Any]] | None:
    if value is None or value == "":
        return None
    return [{"role": role, "parts": _content_parts(value if type(value) is str else [value])}]


def _operation(span: DecodedSpan, attrs: dict[str, Any]) -> str | None:
    value = attrs.get("gen_ai.operation.name")
    if type(value) is str and value:
        return value[:40]
    kind = attrs.get("openinference.span.kind")
    if type(kind) is str and kind.upper() in _OI_OPERATIONS:
        return _OI_OPERATIONS[kind.upper()]
    request_type = attrs.get("llm.request.type")
    if type(request_type) is str and request_type.lower() in _REQUEST_TYPES:
        return _REQUEST_TYPES[request_type.lower()]
    traceloop = attrs.get("traceloop.span.kind")
    if type(traceloop) is str and traceloop.lower() in _TRACELOOP_KINDS:
        return _TRACELOOP_KINDS[traceloop.lower()]
    if any(key in attrs for key in _FLAT_PROMPT_KEYS):
        return "chat"
    if span.events and any(event.name in _CONTENT_EVENTS for event in span.events):
        return "chat"
    return None


def _schema(span: DecodedSpan, attrs: dict[str, Any], buckets: dict[str, Any]) -> str:
    if any(key in attrs for key in _NEW_GENAI_KEYS) or any(
        e.name == "gen_ai.client.inference.operation.details" for e in span.events
    ):
        return "genai"
    if "openinference.span.kind" in attrs:
        return "openinference"
    if (
        "llm.request.type" in attrs
        or "traceloop.span.kind" in attrs
        or "gen_ai.prompt" in buckets
        or "gen_ai.completion" in buckets
    ):
        return "openllmetry"
    if "gen_ai.system" in attrs or any(e.name in _CONTENT_EVENTS for e in span.events):
        return "genai_events"
    return "genai"


def _split(attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[int, dict[str, Any]]]]:
    """The attributes not read into the record, and the indexed ones grouped by prefix."""
    rest: dict[str, Any] = {}
    buckets: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in attrs.items():
        if key in _CONSUMED or key.startswith(_DROPPED_PREFIXES):
            continue
        if key.startswith(_INDEXED):
            pieces = key.split(".", 3)
            if len(pieces) == 4 and pieces[2].isdigit():
                head = pieces[0] + "." + pieces[1]
                bucket = buckets.get(head)
                if bucket is None:
                    bucket = buckets[head] = {}
                fields = bucket.get(int(pieces[2]))
                if fields is None:
                    fields = bucket[int(pieces[2])] = {}
                fields[pieces[3]] = value
                continue
        if type(value) is str and len(value) > MAX_ATTRIBUTE_CHARS:
            value = f"[{len(value)} characters omitted]"
        rest[key] = value
    return rest, buckets


def _instructions_hash(parts: list[dict[str, Any]] | None) -> str | None:
    if not parts:
        return None
    texts = [p["content"] for p in parts if p.get("type") == "text"]
    if texts:
        data = "\n".join(str(t) for t in texts).encode()
    else:
        data = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def normalise(span: DecodedSpan) -> dict[str, Any] | None:
    """The interaction record of a GenAI span, or None when the span is not a GenAI one."""
    attrs = span.attributes
    operation = _operation(span, attrs)
    if operation is None:
        return None
    rest, buckets = _split(attrs)
    schema = _schema(span, attrs, buckets)
    content: dict[str, Any] = {}
    exception_type = _from_events(span.events, content) if span.events else None
    tl_kind = attrs.get("traceloop.span.kind")
    is_tool = operation == "execute_tool"

    instructions = _instructions(attrs.get("gen_ai.system_instructions"))
    inputs = _messages(attrs.get("gen_ai.input.messages"), "user", False)
    outputs = _messages(attrs.get("gen_ai.output.messages"), "assistant", True)
    if inputs is None:
        flat = buckets.get("llm.input_messages") or buckets.get("gen_ai.prompt")
        if flat:
            inputs = [_flat_message(m, "user", False) for m in _indexed(flat)]
    if outputs is None:
        flat = buckets.get("llm.output_messages") or buckets.get("gen_ai.completion")
        if flat:
            outputs = [_flat_message(m, "assistant", True) for m in _indexed(flat)]
    inputs = inputs or content.get("input") or _messages(attrs.get("gen_ai.prompt"), "user", False)
    outputs = (
        outputs
        or content.get("output")
        or _messages(attrs.get("gen_ai.completion"), "assistant", True)
    )
    instructions = instructions or content.get("instructions")
    if inputs is None and buckets.get("llm.prompts"):
        inputs = [_flat_message(m, "user", False) for m in _indexed(buckets["llm.prompts"])]
    if outputs is None and buckets.get("llm.choices"):
        choices = _indexed(buckets["llm.choices"])
        outputs = [_flat_message(m, "assistant", True) for m in choices]
    if inputs is None and buckets.get("embedding.embeddings"):
        texts = [m.get("embedding.text") for m in _indexed(buckets["embedding.embeddings"])]
        inputs = [{"role": "user", "parts": [_text(t)]} for t in texts if type(t) is str] or None

    tool_arguments = _maybe_json(attrs.get("gen_ai.tool.call.arguments"))
    tool_result = _maybe_json(attrs.get("gen_ai.tool.call.result"))
    tool_name = _str(_first(attrs, "gen_ai.tool.name", "tool.name"))
    agent_name = _str(_first(attrs, "gen_ai.agent.name", "gen_ai.agent.id", "agent.name"))
    entity_in = _first(attrs, "traceloop.entity.input", "input.value")
    entity_out = _first(attrs, "traceloop.entity.output", "output.value")
    if operation == "retrieval":
        query = _first(attrs, "gen_ai.retrieval.query.text", "input.value")
        tool_arguments = tool_arguments if tool_arguments is not None else query
        documents = _documents(attrs.get("gen_ai.retrieval.documents"))
        if documents is None and buckets.get("retrieval.documents"):
            documents = [_documents_item(d) for d in _indexed(buckets["retrieval.documents"])]
        tool_result = tool_result if tool_result is not None else documents
    elif is_tool or tl_kind == "tool":
        if tool_arguments is None:
            tool_arguments = _maybe_json(entity_in)
        if tool_result is None:
            tool_result = _maybe_json(entity_out)
        if tool_name is None and tl_kind == "tool":
            tool_name = _str(rest.pop("traceloop.entity.name", None))
    else:
        inputs = inputs or _text_message(entity_in, "user")
        outputs = outputs or _text_message(entity_out, "assistant")
        if agent_name is None and tl_kind == "agent":
            agent_name = _str(rest.pop("traceloop.entity.name", None))

    if instructions is None and inputs and inputs[0]["role"] == "system":
        count = 0
        while count < len(inputs) and inputs[count]["role"] == "system":
            count += 1
        instructions = [part for m in inputs[:count] for part in m["parts"]] or None
        inputs = inputs[count:] or None

    reasons = attrs.get("gen_ai.response.finish_reasons")
    if type(reasons) is str:
        parsed = _loads(reasons) if reasons[:1] == "[" else _FAIL
        reasons = parsed if type(parsed) is list else [reasons]
    if type(reasons) is list:
        finish_reasons = [str(r) for r in reasons if r is not None] or None
    elif outputs and any("finish_reason" in m for m in outputs):
        finish_reasons = [m["finish_reason"] for m in outputs if "finish_reason" in m]
    else:
        reason = attrs.get("llm.finish_reason")
        finish_reasons = [str(reason)] if reason else None

    error_type = _str(attrs.get("error.type"))
    if error_type is None and span.status_code == 2:
        error_type = exception_type or "_OTHER"
    start, end = span.start_ns, span.end_ns
    response_model = _first(attrs, "gen_ai.response.model", "llm.response.model_name")
    request_model = _first(
        attrs,
        "gen_ai.request.model",
        "llm.request.model_name",
        "llm.model_name",
        "embedding.model_name",
    )
    provider = _str(_first(attrs, "gen_ai.provider.name", "gen_ai.system", "llm.provider"))
    provider = provider or _str(attrs.get("llm.system"))
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "service_name": _str(span.resource.get("service.name")),
        "name": span.name[:500],
        "schema": schema,
        "operation": operation,
        "provider": provider.lower()[:100] if provider else None,
        "request_model": _str(request_model),
        "response_model": _str(response_model or attrs.get("llm.model_name")),
        "conversation_id": _str(
            _first(
                attrs,
                "gen_ai.conversation.id",
                "session.id",
                "traceloop.association.properties.session_id",
                "traceloop.association.properties.conversation_id",
            )
        ),
        "user_id": _str(
            _first(
                attrs,
                "user.id",
                "enduser.id",
                "traceloop.association.properties.user_id",
                "llm.user",
            )
        ),
        "agent_name": agent_name,
        "system_instructions": instructions,
        "system_instructions_hash": _instructions_hash(instructions),
        "input_messages": inputs,
        "output_messages": outputs,
        "tool_name": tool_name,
        "tool_call_id": _str(_first(attrs, "gen_ai.tool.call.id", "tool.id", "tool_call.id")),
        "tool_arguments": tool_arguments,
        "tool_result": tool_result,
        "data_source": _str(attrs.get("gen_ai.data_source.id")),
        "input_tokens": _int(_first(attrs, *_INPUT_TOKENS)),
        "output_tokens": _int(_first(attrs, *_OUTPUT_TOKENS)),
        "finish_reasons": finish_reasons,
        "error_type": error_type,
        "start_time": _EPOCH + timedelta(microseconds=start // 1000),
        "end_time": _EPOCH + timedelta(microseconds=end // 1000),
        "latency_ms": (end - start) / 1e6,
        "attributes": rest or None,
    }
