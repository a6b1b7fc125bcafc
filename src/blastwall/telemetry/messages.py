"""Messages in the GenAI 1.37 shape, from whichever convention sent them.

Structured messages or their JSON strings (1.37 `gen_ai.input.messages` etc.), OpenAI-style
messages (`content`, `tool_calls`, `function_call`, `tool_call_id`), messages flattened into
indexed attributes (OpenLLMetry `gen_ai.prompt.N.*`, OpenInference `llm.input_messages.N.*`) and
the content events of 1.26-1.36 (`gen_ai.*.message`, `gen_ai.choice`, `gen_ai.content.*`) and
1.37 (the operation-details event) all become ``{"role", "parts", ["finish_reason"]}`` messages.
Also the small value helpers the normaliser shares: JSON that does not parse stays text, and
values nested deeper than `MAX_DEPTH` are not let through.
"""

from __future__ import annotations

from typing import Any

import orjson

from blastwall.telemetry.otlp import MAX_DEPTH, SpanEvent, nul_free

__all__ = [
    "CONTENT_EVENTS",
    "DETAILS_EVENT",
    "FAIL",
    "as_text",
    "content_parts",
    "first_int",
    "flat_messages",
    "from_events",
    "loads",
    "opaque",
    "parse_messages",
    "retrieved_documents",
    "short_str",
    "text_message",
    "text_part",
]

# fmt: off
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "tool": "tool",
          "developer": "system", "human": "user", "model": "assistant", "ai": "assistant",
          "function": "tool", "ipython": "tool"}
_CANONICAL_ROLES = frozenset(["user", "assistant", "system", "tool"])
_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
CONTENT_EVENTS = frozenset([*_EVENT_ROLES, "gen_ai.choice", DETAILS_EVENT,
                            "gen_ai.content.prompt", "gen_ai.content.completion"])
# fmt: on
FAIL = object()
"""What `loads` returns for text that is not JSON."""
_TOO_DEEP = f"[value nested deeper than {MAX_DEPTH} levels]"


def short_str(value: Any, limit: int = 200) -> str | None:
    """A scalar as a string of at most `limit` characters; None for nothing, "", dict, list."""
    if type(value) is str:
        return value[:limit] if value else None
    if value is None or type(value) is dict or type(value) is list:
        return None
    return str(value)[:limit]


#: The range of an INTEGER column on every database (PostgreSQL's is 32 bits): a count
#: outside it (a token count of 2**64 sent by a broken exporter) is not a count.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def first_int(*values: Any) -> int | None:
    """The first of `values` that is an integer (or an integral float, or digits) that fits
    an INTEGER column, or None."""
    for value in values:
        kind = type(value)
        if (
            kind is int
            or (kind is float and value.is_integer())
            or (kind is str and 0 < len(value) <= 18 and value.isascii() and value.isdigit())
        ) and INT_MIN <= (number := int(value)) <= INT_MAX:
            return number
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


def loads(text: str) -> Any:
    """Parsed JSON, or `FAIL`. A NUL character escaped in the JSON (`\\u0000`) is taken
    out of the strings parsed, as the decoder takes it out of every string it reads."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return FAIL
    return nul_free(parsed) if "\\u0000" in text else parsed


def opaque(value: Any) -> Any:
    """A value kept as sent (tool arguments and results, unknown parts): a JSON object or
    array string is parsed; anything nested deeper than MAX_DEPTH is not let through (it
    could not be stored or redacted safely)."""
    if type(value) is str:
        if value[:1] not in ("{", "["):
            return value
        parsed = loads(value)
        return value if parsed is FAIL or _too_deep(parsed, 1) else parsed
    return _TOO_DEEP if _too_deep(value, 1) else value


def as_text(value: Any) -> str:
    """A string as it is; anything else as JSON text."""
    if type(value) is str:
        return value
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # deeper than orjson's limit, or an integer over 64 bits
        return _TOO_DEEP


def _ident(value: Any) -> str | None:
    """A tool call id or name: a string (whatever was sent), or None."""
    return None if value is None else as_text(value)


def text_part(content: str) -> dict[str, Any]:
    """A 1.37 text part."""
    return {"type": "text", "content": content}


def _part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        content = part.get("content")
        if type(content) is str and len(part) == 2:
            return part
        if content is None:
            content = part.get("text")
        return text_part(as_text(content))
    if kind == "tool_call":
        arguments = opaque(part.get("arguments"))
        return {
            "type": kind,
            "id": _ident(part.get("id")),
            "name": _ident(part.get("name")),
            "arguments": arguments,
        }
    if kind == "tool_call_response":
        response = part["response"] if "response" in part else part.get("result")
        return {"type": kind, "id": _ident(part.get("id")), "response": opaque(response)}
    if kind is None and type(part.get("text")) is str:
        return text_part(part["text"])
    return part if not _too_deep(part, 1) else text_part(_TOO_DEEP)


def content_parts(content: Any) -> list[dict[str, Any]]:
    """Message content (a string, a JSON list of parts, a list of parts) as 1.37 parts."""
    if type(content) is str:
        if content[:2] == "[{":
            parsed = loads(content)
            if type(parsed) is list and all(type(p) is dict and "type" in p for p in parsed):
                return [_part(p) for p in parsed]
        return [text_part(content)] if content else []
    if type(content) is list:
        return [
            _part(p) if type(p) is dict else text_part(as_text(p)) for p in content if p is not None
        ]
    if type(content) is dict:
        return [_part(content)]
    return [] if content is None else [text_part(as_text(content))]


def _role(value: Any, default: str) -> str:
    return _ROLES.get(value.lower(), default) if type(value) is str else default


def _tool_calls(value: Any) -> list[dict[str, Any]]:
    if type(value) is str:
        value = loads(value)
    if type(value) is dict:
        value = [value]
    calls = []
    for call in value if type(value) is list else ():
        if type(call) is dict:
            function = call.get("function")
            source = function if type(function) is dict else call
            arguments = opaque(source.get("arguments"))
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
            else (_part(p) if type(p) is dict else text_part(as_text(p)))
            for p in parts
        ]
    elif role == "tool":
        call_id = _ident(msg.get("tool_call_id", msg.get("id")))
        parts = [{"type": "tool_call_response", "id": call_id, "response": opaque(content)}]
    else:
        parts = content_parts(content)
        parts.extend(_tool_calls(msg.get("tool_calls")))
        if type(msg.get("function_call")) is dict:
            parts.extend(_tool_calls(msg["function_call"]))
    message: dict[str, Any] = {"role": role, "parts": parts}
    if output and msg.get("finish_reason"):
        message["finish_reason"] = as_text(msg["finish_reason"])
    return message


def parse_messages(value: Any, default_role: str, output: bool) -> list[dict[str, Any]] | None:
    """A messages attribute (structured, or a JSON string) in the 1.37 shape."""
    if value is None:
        return None
    if type(value) is str:
        parsed = loads(value)
        if parsed is FAIL or (type(parsed) is not list and type(parsed) is not dict):
            return [{"role": default_role, "parts": [text_part(value)]}] if value else None
        value = parsed
    if type(value) is not list:
        value = [value]
    out = []
    for m in value:
        if type(m) is not dict:
            if m is not None:
                out.append({"role": default_role, "parts": content_parts(m)})
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


def flat_messages(
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
            body = loads(body)
        if type(body) is dict:
            return body
    return attrs


def from_events(events: list[SpanEvent], into: dict[str, Any]) -> None:
    """Content events into `into` ("input", "output", "instructions"), plus the
    `exception.type` of an exception event ("exception")."""
    inputs: list[dict[str, Any]] = []
    choices: list[tuple[int, dict[str, Any]]] = []
    for event in events:
        name, attrs = event.name, event.attributes
        if name == "exception":
            into["exception"] = into.get("exception") or short_str(attrs.get("exception.type"))
        elif name in _EVENT_ROLES:
            inputs.append(_message(_event_body(attrs), _EVENT_ROLES[name], False))
        elif name == "gen_ai.choice":
            body = _event_body(attrs)
            message = body.get("message")
            if type(message) is str:
                message = loads(message)
            message = dict(message) if type(message) is dict else dict(body)
            if message.get("finish_reason") is None:
                message["finish_reason"] = body.get("finish_reason")
            choices.append(
                (first_int(body.get("index")) or 0, _message(message, "assistant", True))
            )
        elif name == DETAILS_EVENT:
            into["input"] = parse_messages(attrs.get("gen_ai.input.messages"), "user", False)
            into["output"] = parse_messages(attrs.get("gen_ai.output.messages"), "assistant", True)
            into["instructions"] = content_parts(attrs.get("gen_ai.system_instructions"))
        elif name == "gen_ai.content.prompt":
            into["input"] = parse_messages(attrs.get("gen_ai.prompt"), "user", False)
        elif name == "gen_ai.content.completion":
            into["output"] = parse_messages(attrs.get("gen_ai.completion"), "assistant", True)
    if inputs and not into.get("input"):
        into["input"] = inputs
    if choices and not into.get("output"):
        into["output"] = [message for _, message in sorted(choices, key=lambda c: c[0])]


def retrieved_documents(value: Any) -> list[Any] | None:
    """Retrieved documents as a list, without OpenInference's `document.` key prefix."""
    value = opaque(value)
    if type(value) is not list:
        return None if value is None else [value]
    return [
        {k.removeprefix("document."): v for k, v in d.items()} if type(d) is dict else d
        for d in value
    ]


def text_message(value: Any, role: str) -> list[dict[str, Any]] | None:
    """Plain input or output (agent, workflow, chain) as one message of `role`."""
    if value is None or value == "":
        return None
    return [{"role": role, "parts": content_parts(value if type(value) is str else [value])}]
