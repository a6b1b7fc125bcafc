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

from blastwall.telemetry.messages import (
    CONTENT_EVENTS,
    DETAILS_EVENT,
    FAIL,
    as_text,
    content_parts,
    first_int,
    flat_messages,
    from_events,
    loads,
    opaque,
    parse_messages,
    retrieved_documents,
    short_str,
    text_message,
    text_part,
)
from blastwall.telemetry.otlp import DecodedSpan

__all__ = ["MAX_ATTRIBUTE_CHARS", "OPERATIONS", "normalise", "system_id_hint", "trim_attributes"]

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
    "context": (frozenset(), (), ()),  # not a GenAI span: nothing is read, all is kept
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
_HASHES: dict[str, str] = {}


def system_id_hint(span: DecodedSpan) -> str | None:
    """The `blastwall.system.id` resource attribute, when the sender set one."""
    value = span.resource.get("blastwall.system.id")
    return value if type(value) is str and value else None


def _kind(span: DecodedSpan, attrs: dict[str, Any]) -> tuple[str | None, str]:
    """The operation (None: not a GenAI span) and the convention of a span."""
    events = span.events
    content_events = any(e.name in CONTENT_EVENTS for e in events) if events else False
    flat_prompt = not _FLAT_PROMPT.isdisjoint(attrs)
    oi_kind = attrs.get("openinference.span.kind")
    request_type = attrs.get("llm.request.type")
    traceloop = attrs.get("traceloop.span.kind")
    if not _NEW_GENAI.isdisjoint(attrs) or any(e.name == DETAILS_EVENT for e in events):
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
        kind = type(value)
        if kind is str:
            if len(value) > MAX_ATTRIBUTE_CHARS:
                value = f"[{len(value)} characters omitted]"
        elif kind is list or kind is dict:
            value = opaque(value)  # the decoder lets nothing deeper than MAX_DEPTH through
        rest[key] = value
    return rest, buckets


def trim_attributes(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """Attributes as an interaction's leftover `attributes` are kept: a string longer than
    `MAX_ATTRIBUTE_CHARS` replaced by a note of its length, a value nested deeper than
    `MAX_DEPTH` by a note; None when there are none. For the raw attributes of the spans that
    are not GenAI ones (a `db.statement` can be 100 KB)."""
    return _split(attributes, "context")[0] or None


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
            r["tool_arguments"] = opaque(entity_in)
        if r["tool_result"] is None:
            r["tool_result"] = opaque(entity_out)
        if r["tool_name"] is None and kind == "tool":
            r["tool_name"] = short_str(rest.pop("traceloop.entity.name", None))
        return
    r["input_messages"] = r["input_messages"] or text_message(entity_in, "user")
    r["output_messages"] = r["output_messages"] or text_message(entity_out, "assistant")
    if r["agent_name"] is None and kind == "agent":
        r["agent_name"] = short_str(rest.pop("traceloop.entity.name", None))


def _genai_fields(
    span: DecodedSpan, r: dict[str, Any], rest: dict[str, Any], buckets: Any, found: dict[str, Any]
) -> None:
    """Fields of the three gen_ai.* based conventions (1.37+, 1.30-1.36 events, OpenLLMetry)."""
    attrs = span.attributes
    get = attrs.get
    inputs = parse_messages(get("gen_ai.input.messages"), "user", False)
    outputs = parse_messages(get("gen_ai.output.messages"), "assistant", True)
    if buckets:
        inputs = inputs or flat_messages(buckets.get("gen_ai.prompt"), "user", False)
        outputs = outputs or flat_messages(buckets.get("gen_ai.completion"), "assistant", True)
    if found:
        inputs = inputs or found.get("input")
        outputs = outputs or found.get("output")
    if "gen_ai.prompt" in attrs or "gen_ai.completion" in attrs:  # single JSON attributes
        inputs = inputs or parse_messages(get("gen_ai.prompt"), "user", False)
        outputs = outputs or parse_messages(get("gen_ai.completion"), "assistant", True)
    r["input_messages"], r["output_messages"] = inputs, outputs
    instructions = content_parts(get("gen_ai.system_instructions"))
    r["system_instructions"] = instructions or found.get("instructions") or None
    r["tool_name"] = short_str(get("gen_ai.tool.name"))
    r["tool_arguments"] = opaque(get("gen_ai.tool.call.arguments"))
    r["tool_result"] = opaque(get("gen_ai.tool.call.result"))
    r["agent_name"] = short_str(get("gen_ai.agent.name") or get("gen_ai.agent.id"))
    if r["operation"] == "retrieval":
        if r["tool_arguments"] is None:
            r["tool_arguments"] = get("gen_ai.retrieval.query.text")
        if r["tool_result"] is None:
            r["tool_result"] = retrieved_documents(get("gen_ai.retrieval.documents"))
    if r["schema"] == "openllmetry":
        _traceloop_entity(attrs, r, rest)
    r["provider"] = get("gen_ai.provider.name") or get("gen_ai.system")
    r["request_model"] = short_str(get("gen_ai.request.model"))
    r["response_model"] = short_str(get("gen_ai.response.model"))
    r["conversation_id"] = short_str(_first(attrs, _CONVERSATION))
    r["user_id"] = short_str(_first(attrs, _USER))
    r["tool_call_id"] = short_str(get("gen_ai.tool.call.id"))
    r["data_source"] = short_str(get("gen_ai.data_source.id"))
    r["input_tokens"] = first_int(
        get("gen_ai.usage.input_tokens"), get("gen_ai.usage.prompt_tokens")
    )
    r["output_tokens"] = first_int(
        get("gen_ai.usage.output_tokens"), get("gen_ai.usage.completion_tokens")
    )
    r["finish_reasons"] = get("gen_ai.response.finish_reasons")


def _openinference_fields(span: DecodedSpan, r: dict[str, Any], buckets: Any) -> None:
    get = span.attributes.get
    inputs = flat_messages(buckets.get("llm.input_messages"), "user", False)
    outputs = flat_messages(buckets.get("llm.output_messages"), "assistant", True)
    inputs = inputs or flat_messages(buckets.get("llm.prompts"), "user", False)
    outputs = outputs or flat_messages(buckets.get("llm.choices"), "assistant", True)
    if inputs is None and "embedding.embeddings" in buckets:
        texts = [e.get("embedding.text") for e in buckets["embedding.embeddings"].values()]
        inputs = [
            {"role": "user", "parts": [text_part(t)]} for t in texts if type(t) is str
        ] or None
    value_in, value_out = get("input.value"), get("output.value")
    if r["operation"] == "retrieval":
        r["tool_arguments"] = value_in
        documents = buckets.get("retrieval.documents")
        r["tool_result"] = retrieved_documents(
            [documents[i] for i in sorted(documents)] if documents else None
        )
    elif r["operation"] == "execute_tool":
        r["tool_arguments"] = opaque(value_in)
        r["tool_result"] = opaque(value_out)
    else:
        inputs = inputs or text_message(value_in, "user")
        outputs = outputs or text_message(value_out, "assistant")
    r["input_messages"] = inputs
    r["output_messages"] = outputs
    r["provider"] = get("llm.provider") or get("llm.system")
    r["request_model"] = short_str(_first(span.attributes, _OI_MODEL))
    r["response_model"] = short_str(get("llm.response.model_name") or get("llm.model_name"))
    r["conversation_id"] = short_str(get("session.id"))
    r["user_id"] = short_str(get("user.id") or get("enduser.id"))
    r["agent_name"] = short_str(get("agent.name"))
    r["tool_name"] = short_str(get("tool.name"))
    r["tool_call_id"] = short_str(get("tool.id") or get("tool_call.id"))
    r["input_tokens"] = first_int(get("llm.token_count.prompt"))
    r["output_tokens"] = first_int(get("llm.token_count.completion"))
    r["finish_reasons"] = get("llm.finish_reason")


def _finish_reasons(value: Any, outputs: list[dict[str, Any]] | None) -> list[str] | None:
    if type(value) is str:
        parsed = loads(value) if value[:1] == "[" else FAIL
        value = parsed if type(parsed) is list else [value]
    if type(value) is list:
        return [as_text(reason) for reason in value if reason is not None] or None
    if outputs:
        return [m["finish_reason"] for m in outputs if "finish_reason" in m] or None
    return None


def _instructions_hash(parts: list[dict[str, Any]] | None) -> str | None:
    if not parts:
        return None
    texts = [str(p.get("content")) for p in parts if p.get("type") == "text"]
    data = "\n".join(texts) if texts else as_text(parts)
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
    if _MARKERS.isdisjoint(attrs) and not any(e.name in CONTENT_EVENTS for e in span.events):
        return None
    operation, schema = _kind(span, attrs)
    if operation is None:
        return None
    rest, buckets = _split(attrs, schema)
    r = _RECORD.copy()
    r["schema"], r["operation"] = schema, operation
    found: dict[str, Any] = {}  # what the span events hold
    if span.events:
        from_events(span.events, found)
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
    error_type = short_str(attrs.get("error.type"))
    if error_type is None and span.status_code == 2:
        error_type = found.get("exception") or "_OTHER"
    r["error_type"] = error_type
    provider = short_str(r["provider"], 100)
    r["provider"] = provider.lower() if provider else None
    r["trace_id"], r["span_id"] = span.trace_id, span.span_id
    r["parent_span_id"], r["name"] = span.parent_span_id, span.name[:500]
    r["service_name"] = short_str(span.resource.get("service.name"))
    r["start_time"], r["end_time"] = _time(span.start_ns), _time(span.end_ns)
    r["latency_ms"] = (span.end_ns - span.start_ns) / 1e6
    for key in _APP_RESOURCE:  # which build of the application answered
        value = span.resource.get(key)
        if isinstance(value, str) and value:
            rest[key] = value[:200]
    r["attributes"] = rest or None
    return r


_APP_RESOURCE = ("service.version", "deployment.environment.name", "deployment.environment")
"""Resource attributes kept in an interaction's `attributes`: the application's version and
environment, for the investigation (the model's version is in `response_model`)."""
