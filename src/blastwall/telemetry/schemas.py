"""API shapes of telemetry: interactions, trace trees, ingest keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from blastwall.signals.schemas import PlainText


class InteractionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    trace_id: str
    span_id: str
    parent_span_id: str | None
    system_id: str | None
    service_name: str | None
    name: str
    schema_: str = Field(alias="schema", serialization_alias="schema")
    operation: str
    provider: str | None
    request_model: str | None
    response_model: str | None
    conversation_id: str | None
    user_id: str | None
    agent_name: str | None
    system_instructions_hash: str | None
    system_instructions: Any
    input_messages: Any
    output_messages: Any
    tool_name: str | None
    tool_call_id: str | None
    tool_arguments: Any
    tool_result: Any
    data_source: str | None
    input_tokens: int | None
    output_tokens: int | None
    finish_reasons: Any
    error_type: str | None
    content_policy: str
    content_hidden: bool = Field(
        default=False, description="True when the caller's role may not see content."
    )
    start_time: datetime
    end_time: datetime
    latency_ms: float
    attributes: Any
    received_at: datetime


class SpanNode(BaseModel):
    span_id: str
    parent_span_id: str | None
    name: str
    system_id: str | None
    service_name: str | None
    start_time: datetime
    end_time: datetime
    interaction_id: int | None = Field(
        default=None, description="Set when the span is a GenAI interaction."
    )
    operation: str | None = None
    children: list[SpanNode] = Field(default_factory=list)


class TraceOut(BaseModel):
    trace_id: str
    spans: int
    interactions: int
    roots: list[SpanNode]


class UnregisteredOut(BaseModel):
    service_name: str | None
    interactions: int
    first_seen: datetime
    last_seen: datetime


class IngestKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system_id: Annotated[str, Field(max_length=100), PlainText]


class IngestKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    system_id: str
    prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class IngestKeyCreated(IngestKeyOut):
    key: str


class ContentCaptureOut(BaseModel):
    state: Literal["on", "off", "unknown"] = Field(
        description="on: the system's GenAI model calls carry their prompts and outputs; off: "
        "they arrive without them, and the detectors cannot see what goes in or out; unknown: "
        "no model call of the system received yet."
    )
    since: datetime | None = Field(
        description="When the state began: the first batch received in it."
    )
    hint: str | None = Field(
        description="When off: the settings of the application's instrumentation that turn "
        "content capture on."
    )
