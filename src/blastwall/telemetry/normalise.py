"""One decoded GenAI span, whatever convention produced it, as one interaction record.

The record's `schema` names the convention read: ``genai`` (GenAI semantic conventions 1.37+:
`gen_ai.input.messages` etc., structured or JSON strings, or the operation-details event),
``genai_events`` (1.30-1.36: `gen_ai.system` and content on `gen_ai.*.message` / `gen_ai.choice`
span events, from attributes, a `body`, or a `gen_ai.event.content` JSON string; also the 1.26
`gen_ai.content.*` events), ``openllmetry`` (Traceloop: `gen_ai.prompt.N.*`, `llm.request.type`,
`traceloop.*`) or ``openinference`` (Arize: `openinference.span.kind`, `llm.input_messages.N.*`,
`input.value`, `tool.*`, `retrieval.documents.N.*`).

Decisions: messages take the GenAI 1.37 shape; leading system messages move to
`system_instructions` when the span has none; JSON that does not parse stays text; values nested
deeper than `MAX_DEPTH` are not let through; a retrieval's query and documents go to
`tool_arguments` / `tool_result`; agent, workflow and chain input/output become a user and an
assistant text message. `attributes` keeps what was not read, minus big content-like attributes
(tool definitions, prompt templates, embeddings); longer strings than `MAX_ATTRIBUTE_CHARS` are
replaced by a note.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from blastwall.telemetry.otlp import MAX_DEPTH, DecodedSpan, SpanEvent

__all__ = ["MAX_ATTRIBUTE_CHARS", "OPERATIONS", "normalise", "system_id_hint"]

# fmt: off
OPERATIONS = ("chat", "text_completion", "embeddings", "retrieval", "execute_tool", "invoke_agent",
              "create_agent", "invoke_workflow", "apply_guardrail", "generate_content")
MAX_ATTRIBUTE_CHARS = 1024

_OI_OPERATIONS = {"LLM": "chat", "TOOL": "execute_tool", "AGENT": "invoke_agent",
                  "RETRIEVER": "retrieval", "RERANKER": "retrieval", "EMBEDDING": "embeddings",
                  "GUARDRAIL": "apply_guardrail", "CHAIN": "invoke_workflow"}
_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings",
                  "rerank": "retrieval"}
_TRACELOOP_KINDS = {"workflow": "invoke_workflow", "agent": "invoke_agent", "tool": "execute_tool"}
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "tool": "tool",
          "developer": "system", "human": "user", "model": "assistant", "ai": "assistant",
          "function": "tool", "ipython": "tool"}
_CANONICAL_ROLES = frozenset(["user", "assistant", "system", "tool"])
_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
_DETAILS_EVENT = "gen_ai.client.inference.operation.details"
_CONTENT_EVENTS = frozenset([*_EVENT_ROLES, "gen_ai.choice", _DETAILS_EVENT,
                             "gen_ai.content.prompt", "gen_ai.content.completion"])
_NEW_GENAI = frozenset(["gen_ai.provider.name", "gen_ai.input.messages", "gen_ai.output.messages",
                        "gen_ai.system_instructions", "gen_ai.tool.call.arguments",
                        "gen_ai.tool.call.result"])
_FLAT_PROMPT = frozenset(["gen_ai.prompt.0.content", "gen_ai.prompt.0.role",
                          "gen_ai.prompt.0.user", "gen_ai.completion.0.content",
                          "gen_ai.completion.0.role"])
_MARKERS = frozenset(["gen_ai.operation.name", "openinference.span.kind", "llm.request.type",
                      "traceloop.span.kind", *_FLAT_PROMPT])
_COMMON = "error.type user.id enduser.id session.id"
_GENAI = _COMMON + """ gen_ai.operation.name gen_ai.provider.name gen_ai.system
    gen_ai.request.model gen_ai.response.model gen_ai.input.messages gen_ai.output.messages
    gen_ai.system_instructions gen_ai.conversation.id gen_ai.agent.name gen_ai.agent.id
    gen_ai.tool.name gen_ai.tool.call.id gen_ai.tool.call.arguments gen_ai.tool.call.result
    gen_ai.data_source.id gen_ai.usage.input_tokens gen_ai.usage.output_tokens
    gen_ai.usage.prompt_tokens gen_ai.usage.completion_tokens gen_ai.response.finish_reasons
    gen_ai.retrieval.query.text gen_ai.retrieval.documents gen_ai.tool.definitions
    gen_ai.prompt gen_ai.completion llm.request.type llm.user traceloop.span.kind
    traceloop.entity.input traceloop.entity.output traceloop.prompt.template
    traceloop.prompt.template_variables traceloop.association.properties.session_id
    traceloop.association.properties.user_id traceloop.association.properties.conversation_id"""
_OPENINFERENCE = _COMMON + """ openinference.span.kind llm.model_name llm.request.model_name
    llm.response.model_name llm.provider llm.system input.value output.value input.mime_type
    output.mime_type llm.token_count.prompt llm.token_count.completion llm.finish_reason tool.name
    tool.id tool_call.id agent.name embedding.model_name llm.prompts llm.prompt_template.template
    llm.prompt_template.variables"""
# schema -> (attributes read into the record, indexed prefixes read, prefixes dropped)
_GENAI_SPLIT = (frozenset(_GENAI.split()), ("gen_ai.prompt.", "gen_ai.completion."),
                ("llm.request.functions.",))
_SPLIT: dict[str, tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]] = {
    "genai": _GENAI_SPLIT, "genai_events": _GENAI_SPLIT, "openllmetry": _GENAI_SPLIT,
    "openinference": (frozenset(_OPENINFERENCE.split()),
                      ("llm.input_messages.", "llm.output_messages.", "llm.prompts.",
                       "llm.choices.", "retrieval.documents.", "embedding.embeddings."),
                      ("llm.tools.", "reranker.")),
}
_CONVERSATION = ("gen_ai.conversation.id", "session.id",
                 "traceloop.association.properties.session_id",
                 "traceloop.association.properties.conversation_id")
_USER = ("user.id", "enduser.id", "traceloop.association.properties.user_id", "llm.user")
_OI_MODEL = ("llm.request.model_name", "llm.model_name", "embedding.model_name")
_RECORD_FIELDS = """trace_id span_id parent_span_id service_name name schema operation provider
    request_model response_model conversation_id user_id agent_name system_instructions
    system_instructions_hash input_messages output_messages tool_name tool_call_id tool_arguments
    tool_result data_source input_tokens output_tokens finish_reasons error_type start_time
    end_time latency_ms attributes"""
# fmt: on
_RECORD = dict.fromkeys(_RECORD_FIELDS.split())
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAIL = object()
_HASHES: dict[str, str] = {}
_TOO_DEEP = f"[value nested deeper than {MAX_DEPTH} levels]"


def system_id_hint(span: DecodedSpan) -> str | None:
    """The `blastwall.system.id` resource attribute, when the sender set one."""
    value = span.resource.get("blastwall.system.id")
    return value if type(value) is str and value else None


def _str(value: Any, limit: int = 200) -> str | None:
    if type(value) is str:
        return value[:limit] if value else None
    if value is None or type(value) is dict or type(value) is list:
        return None
    return str(value)[:limit]


def _int(*values: Any) -> int | None:
    for value in values:
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():
            return int(value)
        if type(value) is str and 0 < len(value) <= 18 and value.isascii() and value.isdigit():
            return int(value)
    return None


def _too_deep(value: Any, depth: int) -> bool:
    kind = type(value)
    if kind is not list and kind is not dict:
        return False
    if depth > MAX_DEPTH:
        return True
    for item in value.values() if kind is dict else value:
        kind = type(item)
        if (kind is dict or kind is list) and _too_deep(item, depth + 1):
            return True
    return False


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _FAIL


def _opaque(value: Any) -> Any:
    """A value kept as sent (tool arguments and results, unknown parts): a JSON object or
    array string is parsed; anything nested deeper than MAX_DEPTH is not let through (it
    could not be stored or redacted safely)."""
    if type(value) is str:
        if value[:1] not in ("{", "["):
            return value
        parsed = _loads(value)
        return value if parsed is _FAIL or _too_deep(parsed, 1) else parsed
    return _TOO_DEEP if _too_deep(value, 1) else value


def _as_text(value: Any) -> str:
    if type(value) is str:
        return value
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # deeper than orjson's limit, or an integer over 64 bits
        return _TOO_DEEP


def _ident(value: Any) -> str | None:
    """A tool call id or name: a string (whatever was sent), or None."""
    return None if value is None else _as_text(value)


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
        return _text(_as_text(content))
    if kind == "tool_call":
        arguments = _opaque(part.get("arguments"))
        return {
            "type": kind,
            "id": _ident(part.get("id")),
            "name": _ident(part.get("name")),
            "arguments": arguments,
        }
    if kind == "tool_call_response":
        response = part["response"] if "response" in part else part.get("result")
        return {"type": kind, "id": _ident(part.get("id")), "response": _opaque(response)}
    if kind is None and type(part.get("text")) is str:
        return _text(part["text"])
    return part if not _too_deep(part, 1) else _text(_TOO_DEEP)


def _content_parts(content: Any) -> list[dict[str, Any]]:
    """Message content (a string, a JSON list of parts, a list of parts) as 1.37 parts."""
    if type(content) is str:
        if content[:2] == "[{":
            parsed = _loads(content)
            if type(parsed) is list and all(type(p) is dict and "type" in p for p in parsed):
                return [_part(p) for p in parsed]
        return [_text(content)] if content else []
    if type(content) is list:
        return [
            _part(p) if type(p) is dict else _text(_as_text(p)) for p in content if p is not None
        ]
    if type(content) is dict:
        return [_part(content)]
    return [] if content is None else [_text(_as_text(content))]


def _role(value: Any, default: str) -> str:
    return _ROLES.get(value.lower(), default) if type(value) is str else default


def _tool_calls(value: Any) -> list[dict[str, Any]]:
    if type(value) is str:
        value = _loads(value)
    if type(value) is dict:
        value = [value]
    calls = []
    for call in value if type(value) is list else ():
        if type(call) is dict:
            function = call.get("function")
            source = function if type(function) is dict else call
            arguments = _opaque(source.get("arguments"))
            calls.append(
                {"type": "tool_call", "id": _ident(call.get("id")),
                 "name": _ident(source.get("name")), "arguments": arguments}
            )  # fmt: skip
    return calls


def _message(msg: dict[str, Any], default_role: str, output: bool) -> dict[str, Any]:
    """A message in the 1.37 shape, or OpenAI-style (content, tool_calls, tool_call_id)."""
    role = msg.get("role")
    role = _ROLES.get(role) if type(role) is str else None  # exact names first: the common case
    if role is None:
        role = _role(msg.get("role"), default_role)
    parts = msg.get("parts")
    content = msg.get("content")
    if type(parts) is list:
        parts = [
            p
            if type(p) is dict
            and p.get("type") == "text"
            and type(p.get("content")) is str
            and len(p) == 2
            else (_part(p) if type(p) is dict else _text(_as_text(p)))
            for p in parts
        ]
    elif role == "tool":
        call_id = _ident(msg.get("tool_call_id", msg.get("id")))
        parts = [{"type": "tool_call_response", "id": call_id, "response": _opaque(content)}]
    else:
        parts = _content_parts(content)
        parts.extend(_tool_calls(msg.get("tool_calls")))
        if type(msg.get("function_call")) is dict:
            parts.extend(_tool_calls(msg["function_call"]))
    message: dict[str, Any] = {"role": role, "parts": parts}
    if output and msg.get("finish_reason"):
        message["finish_reason"] = _as_text(msg["finish_reason"])
    return message


def _messages(value: Any, default_role: str, output: bool) -> list[dict[str, Any]] | None:
    """A messages attribute (structured, or a JSON string) in the 1.37 shape."""
    if value is None:
        return None
    if type(value) is str:
        parsed = _loads(value)
        if parsed is _FAIL or (type(parsed) is not list and type(parsed) is not dict):
            return [{"role": default_role, "parts": [_text(value)]}] if value else None
        value = parsed
    if type(value) is not list:
        value = [value]
    out = []
    for m in value:
        if type(m) is not dict:
            if m is not None:
                out.append({"role": default_role, "parts": _content_parts(m)})
        elif _canonical(m, output):
            out.append(m)  # already in the 1.37 shape with text parts only: kept as it is
        else:
            out.append(_message(m, default_role, output))
    return out or None


def _canonical(msg: dict[str, Any], output: bool) -> bool:
    size = len(msg)
    if size != 2 and not (output and size == 3 and type(msg.get("finish_reason")) is str):
        return False
    role, parts = msg.get("role"), msg.get("parts")
    if type(role) is not str or role not in _CANONICAL_ROLES or type(parts) is not list:
        return False
    for part in parts:
        if not (
            type(part) is dict
            and len(part) == 2
            and part.get("type") == "text"
            and type(part.get("content")) is str
        ):
            return False
    return True


def _flat_messages(
    bucket: dict[int, dict[str, Any]] | None, role: str, output: bool
) -> list[dict[str, Any]] | None:
    """Messages flattened into `N.role`, `N.content`, `N.tool_calls.M.*`, `N.contents.M.*`
    (OpenLLMetry, or OpenInference with its `message.` prefixes)."""
    if not bucket:
        return None
    messages = []
    for position in sorted(bucket):
        msg: dict[str, Any] = {}
        nested: dict[str, dict[int, dict[str, Any]]] = {"tool_calls": {}, "contents": {}}
        for name, value in bucket[position].items():
            name = name.removeprefix("message.")
            if name.startswith(("tool_calls.", "contents.")):
                group, index, sub = [*name.split(".", 2), "", ""][:3]
                if index.isdigit():
                    sub = sub.removeprefix("tool_call.").removeprefix("function.")
                    sub = sub.removeprefix("message_content.")
                    nested[group].setdefault(int(index), {})[sub] = value
            elif name in ("user", "prompt.text", "completion.text"):
                msg["content"] = value
            elif name.startswith("function_call"):
                key = "name" if name.endswith("name") else "arguments"
                msg.setdefault("function_call", {})[key] = value
            else:
                msg[name] = value
        contents, calls = nested["contents"], nested["tool_calls"]
        if contents and msg.get("content") is None:
            msg["content"] = [contents[i] for i in sorted(contents)]
        if calls:
            msg["tool_calls"] = [calls[i] for i in sorted(calls)]
        messages.append(_message(msg, role, output))
    return messages


def _event_body(attrs: dict[str, Any]) -> dict[str, Any]:
    for key in ("gen_ai.event.content", "body", "event.body"):
        body = attrs.get(key)
        if type(body) is str:
            body = _loads(body)
        if type(body) is dict:
            return body
    return attrs


def _from_events(events: list[SpanEvent], into: dict[str, Any]) -> None:
    """Content events into `into` ("input", "output", "instructions"), plus the
    `exception.type` of an exception event ("exception")."""
    inputs: list[dict[str, Any]] = []
    choices: list[tuple[int, dict[str, Any]]] = []
    for event in events:
        name, attrs = event.name, event.attributes
        if name == "exception":
            into["exception"] = into.get("exception") or _str(attrs.get("exception.type"))
        elif name in _EVENT_ROLES:
            inputs.append(_message(_event_body(attrs), _EVENT_ROLES[name], False))
        elif name == "gen_ai.choice":
            body = _event_body(attrs)
            message = body.get("message")
            if type(message) is str:
                message = _loads(message)
            message = dict(message) if type(message) is dict else dict(body)
            if message.get("finish_reason") is None:
                message["finish_reason"] = body.get("finish_reason")
            choices.append((_int(body.get("index")) or 0, _message(message, "assistant", True)))
        elif name == _DETAILS_EVENT:
            into["input"] = _messages(attrs.get("gen_ai.input.messages"), "user", False)
            into["output"] = _messages(attrs.get("gen_ai.output.messages"), "assistant", True)
            into["instructions"] = _content_parts(attrs.get("gen_ai.system_instructions"))
        elif name == "gen_ai.content.prompt":
            into["input"] = _messages(attrs.get("gen_ai.prompt"), "user", False)
        elif name == "gen_ai.content.completion":
            into["output"] = _messages(attrs.get("gen_ai.completion"), "assistant", True)
    if inputs and not into.get("input"):
        into["input"] = inputs
    if choices and not into.get("output"):
        into["output"] = [message for _, message in sorted(choices, key=lambda c: c[0])]


def _documents(value: Any) -> list[Any] | None:
    value = _opaque(value)
    if type(value) is not list:
        return None if value is None else [value]
    return [
        {k.removeprefix("document."): v for k, v in d.items()} if type(d) is dict else d
        for d in value
    ]


def _text_message(value: Any, role: str) -> list[dict[str, Any]] | None:
    if value is None or value == "":
        return None
    return [{"role": role, "parts": _content_parts(value if type(value) is str else [value])}]


def _kind(span: DecodedSpan, attrs: dict[str, Any]) -> tuple[str | None, str]:
    """The operation (None: not a GenAI span) and the convention of a span."""
    events = span.events
    content_events = any(e.name in _CONTENT_EVENTS for e in events) if events else False
    flat_prompt = not _FLAT_PROMPT.isdisjoint(attrs)
    oi_kind = attrs.get("openinference.span.kind")
    request_type = attrs.get("llm.request.type")
    traceloop = attrs.get("traceloop.span.kind")
    if not _NEW_GENAI.isdisjoint(attrs) or any(e.name == _DETAILS_EVENT for e in events):
        schema = "genai"
    elif oi_kind is not None:
        schema = "openinference"
    elif request_type is not None or traceloop is not None or flat_prompt:
        schema = "openllmetry"
    elif content_events or "gen_ai.system" in attrs:
        schema = "genai_events"
    else:
        schema = "genai"
    operation = attrs.get("gen_ai.operation.name")
    if type(operation) is str and operation:
        return operation[:40], schema
    operation = None
    if type(oi_kind) is str:
        operation = _OI_OPERATIONS.get(oi_kind.upper())
    if operation is None and type(request_type) is str:
        operation = _REQUEST_TYPES.get(request_type.lower())
    if operation is None and type(traceloop) is str:
        operation = _TRACELOOP_KINDS.get(traceloop.lower())
    if operation is None and (flat_prompt or content_events):
        operation = "chat"
    return operation, schema


def _split(
    attrs: dict[str, Any], schema: str
) -> tuple[dict[str, Any], dict[str, dict[int, dict[str, Any]]]]:
    """The attributes not read into the record, and the indexed ones grouped by prefix."""
    consumed, indexed, dropped = _SPLIT[schema]
    prefixes = indexed + dropped
    rest: dict[str, Any] = {}
    buckets: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in attrs.items():
        if key in consumed:
            continue
        if prefixes and key.startswith(prefixes):
            if key.startswith(dropped):
                continue
            pieces = key.split(".", 3)
            if len(pieces) == 4 and pieces[2].isdigit():
                bucket = buckets.setdefault(pieces[0] + "." + pieces[1], {})
                bucket.setdefault(int(pieces[2]), {})[pieces[3]] = value
                continue
        if type(value) is str and len(value) > MAX_ATTRIBUTE_CHARS:
            value = f"[{len(value)} characters omitted]"
        rest[key] = value
    return rest, buckets


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _traceloop_entity(attrs: dict[str, Any], r: dict[str, Any], rest: dict[str, Any]) -> None:
    """OpenLLMetry's workflow, agent, task and tool spans carry `traceloop.entity.*`."""
    kind = attrs.get("traceloop.span.kind")
    entity_in, entity_out = (
        attrs.get("traceloop.entity.input"),
        attrs.get("traceloop.entity.output"),
    )
    if r["operation"] == "execute_tool":
        if r["tool_arguments"] is None:
            r["tool_arguments"] = _opaque(entity_in)
        if r["tool_result"] is None:
            r["tool_result"] = _opaque(entity_out)
        if r["tool_name"] is None and kind == "tool":
            r["tool_name"] = _str(rest.pop("traceloop.entity.name", None))
        return
    r["input_messages"] = r["input_messages"] or _text_message(entity_in, "user")
    r["output_messages"] = r["output_messages"] or _text_message(entity_out, "assistant")
    if r["agent_name"] is None and kind == "agent":
        r["agent_name"] = _str(rest.pop("traceloop.entity.name", None))


def _genai_fields(
    span: DecodedSpan, r: dict[str, Any], rest: dict[str, Any], buckets: Any, found: dict[str, Any]
) -> None:
    """Fields of the three gen_ai.* based conventions (1.37+, 1.30-1.36 events, OpenLLMetry)."""
    attrs = span.attributes
    get = attrs.get
    inputs = _messages(get("gen_ai.input.messages"), "user", False)
    outputs = _messages(get("gen_ai.output.messages"), "assistant", True)
    if buckets:
        inputs = inputs or _flat_messages(buckets.get("gen_ai.prompt"), "user", False)
        outputs = outputs or _flat_messages(buckets.get("gen_ai.completion"), "assistant", True)
    if found:
        inputs = inputs or found.get("input")
        outputs = outputs or found.get("output")
    if "gen_ai.prompt" in attrs or "gen_ai.completion" in attrs:  # single JSON attributes
        inputs = inputs or _messages(get("gen_ai.prompt"), "user", False)
        outputs = outputs or _messages(get("gen_ai.completion"), "assistant", True)
    r["input_messages"], r["output_messages"] = inputs, outputs
    instructions = _content_parts(get("gen_ai.system_instructions"))
    r["system_instructions"] = instructions or found.get("instructions") or None
    r["tool_name"] = _str(get("gen_ai.tool.name"))
    r["tool_arguments"] = _opaque(get("gen_ai.tool.call.arguments"))
    r["tool_result"] = _opaque(get("gen_ai.tool.call.result"))
    r["agent_name"] = _str(get("gen_ai.agent.name") or get("gen_ai.agent.id"))
    if r["operation"] == "retrieval":
        if r["tool_arguments"] is None:
            r["tool_arguments"] = get("gen_ai.retrieval.query.text")
        if r["tool_result"] is None:
            r["tool_result"] = _documents(get("gen_ai.retrieval.documents"))
    if r["schema"] == "openllmetry":
        _traceloop_entity(attrs, r, rest)
    r["provider"] = get("gen_ai.provider.name") or get("gen_ai.system")
    r["request_model"] = _str(get("gen_ai.request.model"))
    r["response_model"] = _str(get("gen_ai.response.model"))
    r["conversation_id"] = _str(_first(attrs, _CONVERSATION))
    r["user_id"] = _str(_first(attrs, _USER))
    r["tool_call_id"] = _str(get("gen_ai.tool.call.id"))
    r["data_source"] = _str(get("gen_ai.data_source.id"))
    r["input_tokens"] = _int(get("gen_ai.usage.input_tokens"), get("gen_ai.usage.prompt_tokens"))
    r["output_tokens"] = _int(
        get("gen_ai.usage.output_tokens"), get("gen_ai.usage.completion_tokens")
    )
    r["finish_reasons"] = get("gen_ai.response.finish_reasons")


def _openinference_fields(span: DecodedSpan, r: dict[str, Any], buckets: Any) -> None:
    get = span.attributes.get
    inputs = _flat_messages(buckets.get("llm.input_messages"), "user", False)
    outputs = _flat_messages(buckets.get("llm.output_messages"), "assistant", True)
    inputs = inputs or _flat_messages(buckets.get("llm.prompts"), "user", False)
    outputs = outputs or _flat_messages(buckets.get("llm.choices"), "assistant", True)
    if inputs is None and "embedding.embeddings" in buckets:
        texts = [e.get("embedding.text") for e in buckets["embedding.embeddings"].values()]
        inputs = [{"role": "user", "parts": [_text(t)]} for t in texts if type(t) is str] or None
    value_in, value_out = get("input.value"), get("output.value")
    if r["operation"] == "retrieval":
        r["tool_arguments"] = value_in
        documents = buckets.get("retrieval.documents")
        r["tool_result"] = _documents(
            [documents[i] for i in sorted(documents)] if documents else None
        )
    elif r["operation"] == "execute_tool":
        r["tool_arguments"] = _opaque(value_in)
        r["tool_result"] = _opaque(value_out)
    else:
        inputs = inputs or _text_message(value_in, "user")
        outputs = outputs or _text_message(value_out, "assistant")
    r["input_messages"] = inputs
    r["output_messages"] = outputs
    r["provider"] = get("llm.provider") or get("llm.system")
    r["request_model"] = _str(_first(span.attributes, _OI_MODEL))
    r["response_model"] = _str(get("llm.response.model_name") or get("llm.model_name"))
    r["conversation_id"] = _str(get("session.id"))
    r["user_id"] = _str(get("user.id") or get("enduser.id"))
    r["agent_name"] = _str(get("agent.name"))
    r["tool_name"] = _str(get("tool.name"))
    r["tool_call_id"] = _str(get("tool.id") or get("tool_call.id"))
    r["input_tokens"] = _int(get("llm.token_count.prompt"))
    r["output_tokens"] = _int(get("llm.token_count.completion"))
    r["finish_reasons"] = get("llm.finish_reason")


def _finish_reasons(value: Any, outputs: list[dict[str, Any]] | None) -> list[str] | None:
    if type(value) is str:
        parsed = _loads(value) if value[:1] == "[" else _FAIL
        value = parsed if type(parsed) is list else [value]
    if type(value) is list:
        return [_as_text(reason) for reason in value if reason is not None] or None
    if outputs:
        return [m["finish_reason"] for m in outputs if "finish_reason" in m] or None
    return None


def _instructions_hash(parts: list[dict[str, Any]] | None) -> str | None:
    if not parts:
        return None
    texts = [str(p.get("content")) for p in parts if p.get("type") == "text"]
    data = "\n".join(texts) if texts else _as_text(parts)
    digest = _HASHES.get(data)  # a system sends the same instructions again and again
    if digest is None:
        if len(_HASHES) >= 4096:
            _HASHES.clear()
        digest = "sha256:" + hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()
        _HASHES[data] = digest
    return digest


def _time(ns: int) -> datetime:
    return _EPOCH + timedelta(0, ns // 1_000_000_000, ns % 1_000_000_000 // 1000)


def normalise(span: DecodedSpan) -> dict[str, Any] | None:
    """The interaction record of a GenAI span, or None when the span is not a GenAI one."""
    attrs = span.attributes
    if _MARKERS.isdisjoint(attrs) and not any(e.name in _CONTENT_EVENTS for e in span.events):
        return None
    operation, schema = _kind(span, attrs)
    if operation is None:
        return None
    rest, buckets = _split(attrs, schema)
    r = _RECORD.copy()
    r["schema"], r["operation"] = schema, operation
    found: dict[str, Any] = {}  # what the span events hold
    if span.events:
        _from_events(span.events, found)
    if schema == "openinference":
        _openinference_fields(span, r, buckets)
    else:
        _genai_fields(span, r, rest, buckets, found)
    inputs, instructions = r["input_messages"], r["system_instructions"]
    if instructions is None and inputs and inputs[0]["role"] == "system":
        count = 1
        while count < len(inputs) and inputs[count]["role"] == "system":
            count += 1
        r["system_instructions"] = [p for m in inputs[:count] for p in m["parts"]] or None
        r["input_messages"] = inputs[count:] or None
    r["system_instructions_hash"] = _instructions_hash(r["system_instructions"])
    r["finish_reasons"] = _finish_reasons(r["finish_reasons"], r["output_messages"])
    error_type = _str(attrs.get("error.type"))
    if error_type is None and span.status_code == 2:
        error_type = found.get("exception") or "_OTHER"
    r["error_type"] = error_type
    provider = _str(r["provider"], 100)
    r["provider"] = provider.lower() if provider else None
    r["trace_id"], r["span_id"] = span.trace_id, span.span_id
    r["parent_span_id"], r["name"] = span.parent_span_id, span.name[:500]
    r["service_name"] = _str(span.resource.get("service.name"))
    r["start_time"], r["end_time"] = _time(span.start_ns), _time(span.end_ns)
    r["latency_ms"] = (span.end_ns - span.start_ns) / 1e6
    r["attributes"] = rest or None
    return r
