"""OTLP/HTTP JSON trace payloads (the proto3 JSON mapping, hex ids) decoded into
`DecodedSpan`s."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

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
    position,
    strip_nul,
)

_U64_MAX = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_ZERO_TRACE_HEX = "0" * 32
_ZERO_SPAN_HEX = "0" * 16

# fmt: off
_KIND_NAMES = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
               "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
# AnyValue JSON member -> kind of value; lowerCamelCase and the proto field names.
_STR, _BOOL, _INT, _DOUBLE, _BYTES, _ARRAY, _KVLIST = range(7)
_VALUE_KINDS = {"stringValue": _STR, "string_value": _STR, "boolValue": _BOOL,
                "bool_value": _BOOL, "intValue": _INT, "int_value": _INT, "doubleValue": _DOUBLE,
                "double_value": _DOUBLE, "bytesValue": _BYTES, "bytes_value": _BYTES,
                "arrayValue": _ARRAY, "array_value": _ARRAY, "kvlistValue": _KVLIST,
                "kvlist_value": _KVLIST}
# fmt: on
_SPECIAL_DOUBLES = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}


def _fatal(location: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"The JSON body is not an OTLP trace export: {message}, at {location}.",
        problems=[Problem(location, message)],
    )


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _list(obj: dict[str, Any], camel: str, snake: str, location: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if type(value) is not list:
        raise _fatal(f"{location}.{camel}", f"{camel} must be a list")
    return value


def _object(value: Any, location: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise _fatal(location, f"{what} must be an object")
    return value


def _integer(value: Any, signed: bool, kind: str, message: str) -> int:
    """A proto3 JSON int64/uint64: a JSON number or a string of decimal digits."""
    number = None
    if type(value) is int:
        number = value
    elif type(value) is str and 0 < len(value) <= 20 and value.isascii():
        digits = value[1:] if signed and value[0] == "-" else value
        number = int(value) if digits.isdigit() else None
    elif type(value) is float and value.is_integer():
        number = int(value)
    if number is None or not (_I64_MIN if signed else 0) <= number <= _U64_MAX >> signed:
        raise Reject(kind, message)
    return number


def _uint64(value: Any, field: str) -> int:
    if value is None:
        return 0
    return _integer(value, False, field, f"{field} must be an unsigned 64-bit integer")


def _double(value: Any) -> float | str:
    if type(value) is float or type(value) is int:
        return finite(float(value))
    if type(value) is str:
        special = _SPECIAL_DOUBLES.get(value)
        if special is not None:
            return special
        if 0 < len(value) <= 40 and value.isascii() and "_" not in value:
            try:
                return finite(float(value))
            except ValueError:
                pass
    raise Reject("value", "doubleValue must be a number")


def _bytes_hex(value: Any) -> str:
    if type(value) is not str:
        raise Reject("value", "bytesValue must be a base64 string")
    text = value.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True).hex()
    except (binascii.Error, ValueError):
        raise Reject("value", "bytesValue must be a base64 string") from None


def _json_value(value: Any, depth: int) -> Any:
    if type(value) is not dict:
        if value is None:
            return None
        raise Reject("value", "an attribute value must be an AnyValue object")
    for member, raw in value.items():
        kind = _VALUE_KINDS.get(member)
        if kind is None or raw is None:
            continue
        if kind == _STR:
            if type(raw) is str:
                return raw
            raise Reject("value", "stringValue must be a string")
        if kind == _INT:
            return _integer(raw, True, "value", "intValue must be a 64-bit integer")
        if kind == _BOOL:
            if type(raw) is bool:
                return raw
            raise Reject("value", "boolValue must be true or false")
        if kind == _DOUBLE:
            return _double(raw)
        if kind == _BYTES:
            return _bytes_hex(raw)
        if depth >= MAX_DEPTH:
            raise Reject("depth", f"attribute values nest deeper than {MAX_DEPTH} levels")
        if type(raw) is not dict:
            raise Reject("value", "arrayValue and kvlistValue must be objects")
        items = raw.get("values")
        if items is None:
            items = []
        elif type(items) is not list:
            raise Reject("value", "arrayValue.values and kvlistValue.values must be lists")
        if kind == _ARRAY:
            return [_json_value(item, depth + 1) for item in items]
        return _json_attrs(items, depth + 1)
    return None


def _json_attrs(items: Any, depth: int) -> dict[str, Any]:
    if items is None:
        return {}
    if type(items) is not list:
        raise Reject("value", "attributes must be a list of {key, value} objects")
    out: dict[str, Any] = {}
    for item in items:
        if type(item) is not dict:
            raise Reject("value", "attributes must be a list of {key, value} objects")
        key = item.get("key")
        if type(key) is not str:
            raise Reject("value", "an attribute key must be a string")
        value = item.get("value")
        if type(value) is dict:
            text = value.get("stringValue")
            if type(text) is str and len(value) == 1:
                out[key] = text
                continue
        out[key] = _json_value(value, depth)
    return out


def _hex_id(value: Any, field: str, size: int) -> str:
    if type(value) is str and len(value) == size * 2:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) == size:
            return raw.hex()
    raise Reject(field, f"{field} must be {size * 2} hex characters")


def _enum(value: Any, names: dict[str, int], field: str) -> int:
    if value is None:
        return 0
    if type(value) is int and -(1 << 31) <= value < (1 << 31):
        return value
    if type(value) is str and value in names:
        return names[value]
    raise Reject(field, f"{field} must be an enum number or name")


def _optional_str(value: Any, field: str) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise Reject(field, f"{field} must be a string")
    return value


def _json_span(span: Any, resource: dict[str, Any], scope_name: str | None) -> DecodedSpan:
    if type(span) is not dict:
        raise Reject("span", "a span must be a JSON object")
    trace_id = _hex_id(_get(span, "traceId", "trace_id"), "trace_id", 16)
    span_id = _hex_id(_get(span, "spanId", "span_id"), "span_id", 8)
    if trace_id == _ZERO_TRACE_HEX or span_id == _ZERO_SPAN_HEX:
        raise Reject("zero_id", "trace_id and span_id must not be all zeros")
    parent_raw = _get(span, "parentSpanId", "parent_span_id")
    parent = None
    if parent_raw is not None and parent_raw != "":
        try:
            parent = _hex_id(parent_raw, "parent_span_id", 8)
        except Reject:
            raise Reject("parent", "parent_span_id must be empty or 16 hex characters") from None
        if parent == _ZERO_SPAN_HEX:
            parent = None
    start = _uint64(_get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    end = _uint64(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    if end < start:
        raise Reject("time", "end_time_unix_nano is before start_time_unix_nano")
    status = span.get("status") or {}
    if type(status) is not dict:
        raise Reject("status", "status must be an object")
    events_raw = span.get("events") or []
    if type(events_raw) is not list or not all(type(e) is dict for e in events_raw):
        raise Reject("events", "events must be a list of objects")
    events = [
        SpanEvent(
            _optional_str(event.get("name"), "event name"),
            _uint64(_get(event, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
            _json_attrs(event.get("attributes"), 0),
        )
        for event in events_raw
    ]
    return DecodedSpan(
        resource, scope_name, trace_id, span_id, parent, _optional_str(span.get("name"), "name"),
        _enum(span.get("kind"), _KIND_NAMES, "kind"), start, end,
        _enum(status.get("code"), _STATUS_NAMES, "status.code"),
        _optional_str(status.get("message"), "status.message") or None,
        _json_attrs(span.get("attributes"), 0), events,
    )  # fmt: skip


def decode_json(body: bytes) -> Decoded:
    """Decode an OTLP/JSON `ExportTraceServiceRequest` body (proto3 JSON mapping, hex ids)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The body is not valid JSON: {exc}. Send OTLP/JSON or application/x-protobuf.",
            problems=[Problem("body", f"invalid JSON: {exc}")],
        ) from None
    if type(document) is not dict:
        raise _fatal("$", "the top level must be an object")
    spans: list[DecodedSpan] = []
    tally: Tally = {}
    append = spans.append
    for ri, resource_spans in enumerate(_list(document, "resourceSpans", "resource_spans", "$")):
        where_r = f"$.resourceSpans[{ri}]"
        resource_spans = _object(resource_spans, where_r, "a resourceSpans item")
        resource_obj = _object(resource_spans.get("resource"), f"{where_r}.resource", "resource")
        scopes = _list(resource_spans, "scopeSpans", "scope_spans", where_r)
        for si, scope_spans in enumerate(scopes):
            where_s = f"{where_r}.scopeSpans[{si}]"
            scope_spans = _object(scope_spans, where_s, "a scopeSpans item")
            _object(scope_spans.get("scope"), f"{where_s}.scope", "scope")
            _list(scope_spans, "spans", "spans", where_s)
        try:
            resource = _json_attrs(resource_obj.get("attributes"), 0)
        except Reject as reject:
            count = sum(len(ss.get("spans") or ()) for ss in scopes if ss)
            count_reject(tally, f"resource {ri}", reject, count)
            continue
        for si, scope_spans in enumerate(scopes):
            if not scope_spans:
                continue
            scope = scope_spans.get("scope") or {}
            scope_name = scope.get("name")
            if type(scope_name) is not str or not scope_name:
                scope_name = None
            for pi, span in enumerate(scope_spans.get("spans") or ()):
                try:
                    append(_json_span(span, resource, scope_name))
                except Reject as reject:
                    count_reject(tally, position(ri, si, pi), reject)
    if b"\\u0000" in body:  # JSON can only carry a NUL character escaped
        strip_nul(spans)
    return decoded(spans, tally)
