"""Items for the detectors, from a normalised interaction record (ingest) or from a line of
`blastwall scan` input.

Only what is new in a turn is read: a chat request repeats the conversation so far, so the
user and tool messages after the last assistant message are this turn's input; the earlier
ones were read when they were new.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blastwall.detection.base import Item, ToolCall
from blastwall.errors import InvalidInput, Problem, field_path
from blastwall.telemetry.messages import as_text, opaque

__all__ = ["ScanLine", "item_from_line", "item_from_record"]


def _part_texts(parts: list[dict[str, Any]], texts: list[str], context: list[str]) -> None:
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            content = part.get("content")
            if content:
                texts.append(content if type(content) is str else as_text(content))
        elif kind == "tool_call_response":
            response = part.get("response")
            if response is not None:
                context.append(as_text(response))


def _new_input(
    messages: list[dict[str, Any]] | None, item: Item
) -> None:  # user texts -> inputs, tool results -> context, late system messages -> instructions
    if not messages:
        return
    start = 0
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "assistant":
            start = index + 1
            break
    for message in messages[start:]:
        role = message.get("role")
        parts = message.get("parts") or []
        if role == "tool":
            _part_texts(parts, item.context, item.context)
        elif role == "system":
            _part_texts(parts, item.instructions, item.context)
        else:
            _part_texts(parts, item.inputs, item.context)


def _output(messages: list[dict[str, Any]] | None, item: Item) -> None:
    if not messages:
        return
    for message in messages:
        for part in message.get("parts") or []:
            kind = part.get("type")
            if kind == "text":
                content = part.get("content")
                if content:
                    item.outputs.append(content if type(content) is str else as_text(content))
            elif kind == "tool_call":
                item.tool_calls.append(
                    ToolCall(part.get("name"), part.get("arguments"), part.get("id"))
                )


def _documents(value: Any, into: list[str]) -> None:
    """Documents (dicts with content or text, or strings; one or a list) as texts: retrieved
    documents in telemetry, and the texts of a `blastwall scan` line."""
    if value is None:
        return
    for document in value if type(value) is list else [value]:
        if type(document) is dict:
            content = document.get("content", document.get("text"))
            into.append(as_text(content if content is not None else document))
        elif document is not None:
            into.append(as_text(document))


def item_from_record(record: dict[str, Any], *, ref: int = 0) -> Item:
    """The item of an interaction record as `telemetry.normalise` makes it (before any
    content policy is applied: detectors read what was sent)."""
    operation = record["operation"]
    item = Item(
        system_id=record.get("system_id"),
        conversation_id=record.get("conversation_id"),
        user_id=record.get("user_id"),
        agent=record.get("agent_name"),
        operation=operation,
        model=record.get("response_model") or record.get("request_model"),
        latency_ms=record.get("latency_ms"),
        input_tokens=record.get("input_tokens"),
        output_tokens=record.get("output_tokens"),
        finish_reasons=record.get("finish_reasons"),
        error_type=record.get("error_type"),
        attributes=record.get("attributes") or {},
        trace_id=record.get("trace_id"),
        span_id=record.get("span_id"),
        ref=ref,
    )
    start = record.get("start_time")
    if start is not None:
        item.time = start.timestamp()
    instructions = record.get("system_instructions")
    if instructions:
        _part_texts(instructions, item.instructions, item.context)
    _new_input(record.get("input_messages"), item)
    _output(record.get("output_messages"), item)
    if operation == "execute_tool":
        item.tool_calls.append(
            ToolCall(
                record.get("tool_name"), record.get("tool_arguments"), record.get("tool_call_id")
            )
        )
        _documents(record.get("tool_result"), item.context)
    elif operation == "retrieval":
        _documents(record.get("tool_result"), item.context)
    elif operation == "apply_guardrail" and record.get("tool_result") is not None:
        item.outputs.append(as_text(record["tool_result"]))
    return item


# --- blastwall scan -----------------------------------------------------------------------

Texts = str | list[Any]


class ScanTool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: Any = None
    id: str | None = None


class ScanLine(BaseModel):
    """One interaction as `blastwall scan` reads it (JSON Lines). Only `input` is needed."""

    model_config = ConfigDict(extra="forbid")

    input: Texts | None = Field(default=None, description="What the user sent.")
    output: Texts | None = Field(default=None, description="What the model answered.")
    context: Texts | None = Field(
        default=None, description="Retrieved documents and tool results given to the model."
    )
    tool_calls: list[ScanTool] = Field(default_factory=list)
    system_prompt: Texts | None = None
    system: str | None = Field(default=None, description="The AI system, overriding --system.")
    conversation_id: str | None = None
    user_id: str | None = None
    agent: str | None = None
    operation: str = "chat"
    model: str | None = None
    time: datetime | float | None = Field(
        default=None, description="When it happened: ISO 8601 or seconds since the epoch."
    )
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reasons: list[str] | None = None
    error_type: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


def _texts(value: Texts | None) -> list[str]:
    out: list[str] = []
    _documents(value, out)
    return [t for t in out if t]


def item_from_line(line: str, *, number: int, system_id: str | None) -> Item:
    """The item of one line of scan input: a JSON object (`ScanLine`), or plain text taken as
    what a user sent. Raises InvalidInput naming the line and the field."""
    text = line.rstrip("\r\n")
    if not text.lstrip().startswith("{"):
        return Item(inputs=[text] if text.strip() else [], system_id=system_id, ref=number)
    try:
        parsed = ScanLine.model_validate(orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"line {number}: not valid JSON ({exc}); write one JSON object per line, or plain text",
            problems=[Problem(f"line {number}", str(exc))],
        ) from None
    except ValidationError as exc:
        problems = [
            Problem(f"line {number}: {field_path(e['loc'])}", e["msg"]) for e in exc.errors()
        ]
        raise InvalidInput(f"line {number}: not a valid interaction", problems=problems) from None
    when = parsed.time
    if isinstance(when, datetime) and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # a time without a zone is taken as UTC
    item = Item(
        inputs=_texts(parsed.input),
        outputs=_texts(parsed.output),
        context=_texts(parsed.context),
        instructions=_texts(parsed.system_prompt),
        tool_calls=[ToolCall(t.name, opaque(t.arguments), t.id) for t in parsed.tool_calls],
        system_id=parsed.system or system_id,
        conversation_id=parsed.conversation_id,
        user_id=parsed.user_id,
        agent=parsed.agent,
        operation=parsed.operation,
        model=parsed.model,
        time=when.timestamp() if isinstance(when, datetime) else when,
        latency_ms=parsed.latency_ms,
        input_tokens=parsed.input_tokens,
        output_tokens=parsed.output_tokens,
        finish_reasons=parsed.finish_reasons,
        error_type=parsed.error_type,
        attributes=parsed.attributes,
        ref=number,
    )
    return item
