"""OTLP/HTTP protobuf trace payloads decoded into `DecodedSpan`s."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from blastwall.errors import InvalidInput, Problem
from blastwall.telemetry.otlp.spans import (
    MAX_DEPTH,
    Decoded,
    DecodedSpan,
    Reject,
    SpanEvent,
    Tally,
    count_reject,
    decoded,
    finite,
    no_nul,
    position,
)

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


def _pb_attrs(kvs: Any, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        value = kv.value
        key = kv.key
        if "\x00" in key:
            key = key.replace("\x00", "")
        # A non-empty string (non-zero int) can only mean the oneof holds a string (an int):
        # the common cases skip WhichOneof, the costliest accessor.
        text = value.string_value
        if text:
            out[key] = text if "\x00" not in text else text.replace("\x00", "")
            continue
        number = value.int_value
        out[key] = number if number else _pb_value(value, depth)
    return out


def _pb_value(value: Any, depth: int) -> Any:
    which = value.WhichOneof("value")
    if which is None or which == "string_value_strindex":
        return None
    if which == "string_value":
        return no_nul(value.string_value)
    if which in ("int_value", "bool_value"):
        return getattr(value, which)
    if which == "double_value":
        return finite(value.double_value)
    if which == "bytes_value":
        return value.bytes_value.hex()
    if depth >= MAX_DEPTH:
        raise Reject("depth", f"attribute values nest deeper than {MAX_DEPTH} levels")
    if which == "array_value":
        return [_pb_value(item, depth + 1) for item in value.array_value.values]
    return _pb_attrs(value.kvlist_value.values, depth + 1)


def decode_protobuf(body: bytes) -> Decoded:
    """Decode an OTLP `ExportTraceServiceRequest` protobuf body."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidInput(
            f"The body is not a valid OTLP ExportTraceServiceRequest protobuf: {exc}. "
            "Send application/x-protobuf from an OTLP exporter, or application/json.",
            problems=[Problem("body", f"invalid protobuf: {exc}")],
        ) from None
    spans: list[DecodedSpan] = []
    tally: Tally = {}
    append = spans.append
    for ri, resource_spans in enumerate(request.resource_spans):
        try:
            resource = _pb_attrs(resource_spans.resource.attributes, 0)
        except Reject as reject:
            count = sum(len(ss.spans) for ss in resource_spans.scope_spans)
            count_reject(tally, f"resource {ri}", reject, count)
            continue
        for si, scope_spans in enumerate(resource_spans.scope_spans):
            scope_name = no_nul(scope_spans.scope.name) or None
            for pi, span in enumerate(scope_spans.spans):
                try:
                    append(_pb_span(span, resource, scope_name))
                except Reject as reject:
                    count_reject(tally, position(ri, si, pi), reject)
    return decoded(spans, tally)


def _pb_span(span: Any, resource: dict[str, Any], scope_name: str | None) -> DecodedSpan:
    trace_id = span.trace_id
    span_id = span.span_id
    parent = span.parent_span_id
    if len(trace_id) != 16:
        raise Reject("trace_id", f"trace_id must be 16 bytes, got {len(trace_id)}")
    if len(span_id) != 8:
        raise Reject("span_id", f"span_id must be 8 bytes, got {len(span_id)}")
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        raise Reject("zero_id", "trace_id and span_id must not be all zeros")
    if parent and len(parent) != 8:
        raise Reject("parent", f"parent_span_id must be empty or 8 bytes, got {len(parent)}")
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    if end < start:
        raise Reject("time", "end_time_unix_nano is before start_time_unix_nano")
    status = span.status
    events = [
        SpanEvent(no_nul(e.name), e.time_unix_nano, _pb_attrs(e.attributes, 0)) for e in span.events
    ]
    return DecodedSpan(
        resource, scope_name, trace_id.hex(), span_id.hex(),
        parent.hex() if parent and parent != _ZERO_SPAN else None, no_nul(span.name), span.kind,
        start, end, status.code, no_nul(status.message) or None, _pb_attrs(span.attributes, 0),
        events,
    )  # fmt: skip
