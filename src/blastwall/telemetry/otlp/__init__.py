"""OTLP/HTTP trace payloads (protobuf and JSON) decoded into plain Python spans.

`decode_protobuf` and `decode_json` turn an `ExportTraceServiceRequest` into `DecodedSpan`s;
`gunzip` undoes `Content-Encoding: gzip` with a cap on the output size.

Rules shared by both decoders:

* A body that cannot be read at all (not protobuf, not JSON, a container of the wrong type
  above the spans) raises `InvalidInput`. Nothing else ever escapes, whatever the input.
* A span that is wrong on its own (trace_id not 16 bytes / 32 hex characters, span_id not
  8 bytes / 16 hex characters, an all-zero id, a parent_span_id that is neither empty nor
  8 bytes, end before start, a field of the wrong JSON type, attribute values nested deeper
  than `MAX_DEPTH`) is dropped and counted in `Decoded.rejected`; `Decoded.errors` keeps
  the first message of each kind of rejection. Attribute problems on a resource reject
  every span of that resource.
* Attribute values become plain Python: str, int, float, bool, None, list, dict; bytes
  become lowercase hex; non-finite doubles become the strings "NaN", "Infinity" and
  "-Infinity" (as in proto3 JSON) so that every value can be stored as JSON.
* The NUL character is taken out of every string (attribute keys and values, span, event
  and scope names, status messages): PostgreSQL can store it neither in text nor in jsonb,
  and refusing the span would lose the rest of it. SQLite and PostgreSQL then store the
  same thing.
* The `resource` dict is shared by all spans of one resource: treat it as read-only.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from blastwall.errors import InvalidInput, Problem

MAX_DEPTH = 32
"""Deepest nesting of array/kvlist attribute values accepted; deeper rejects the span."""

_U64_MAX = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_ZERO_TRACE_HEX = "0" * 32
_ZERO_SPAN_HEX = "0" * 16


@dataclass(slots=True)
class SpanEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class DecodedSpan:
    resource: dict[str, Any]
    scope_name: str | None
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str | None
    attributes: dict[str, Any]
    events: list[SpanEvent]


@dataclass(slots=True)
class Decoded:
    spans: list[DecodedSpan]
    rejected: int
    errors: list[str]


class _Reject(Exception):
    """One span (or one resource's spans) cannot be used; `kind` groups the messages."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# kind of rejection -> [first message, number of spans]
_Tally = dict[str, list[Any]]


def _tally(tally: _Tally, where: str, reject: _Reject, spans: int = 1) -> None:
    if spans > 0:
        tally.setdefault(reject.kind, [f"{where}: {reject.message}", 0])[1] += spans


def _decoded(spans: list[DecodedSpan], tally: _Tally) -> Decoded:
    errors = [m if n == 1 else f"{m} (and {n - 1} more like it)" for m, n in tally.values()]
    return Decoded(spans, sum(n for _, n in tally.values()), errors)


def nul_free(value: Any) -> Any:
    """`value` with the NUL character taken out of every string in it, keys included."""
    if type(value) is str:
        return value.replace("\x00", "")
    if type(value) is list:
        return [nul_free(item) for item in value]
    if type(value) is dict:
        return {nul_free(key): nul_free(item) for key, item in value.items()}
    return value


def _name(value: str) -> str:
    return value if "\x00" not in value else value.replace("\x00", "")


def _strip_nul(spans: list[DecodedSpan]) -> None:
    """Take the NUL character out of every string of `spans`, in place; spans that shared a
    resource still share one."""
    resources: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for span in spans:
        seen = resources.get(id(span.resource))
        if seen is None:
            seen = resources[id(span.resource)] = (span.resource, nul_free(span.resource))
        span.resource = seen[1]
        span.scope_name = nul_free(span.scope_name) or None
        span.name = _name(span.name)
        span.status_message = nul_free(span.status_message) or None
        span.attributes = nul_free(span.attributes)
        for event in span.events:
            event.name = _name(event.name)
            event.attributes = nul_free(event.attributes)


def _where(ri: int, si: int, pi: int) -> str:
    return f"resource {ri}, scope {si}, span {pi}"


def _finite(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


# --------------------------------------------------------------------------------------
# gzip


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body (one or more members); refuse more than `limit` output bytes."""
    limit = max(limit, 0)
    out = bytearray()
    data = bytes(body)
    try:
        while True:
            stream = zlib.decompressobj(31)
            out += stream.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise InvalidInput(
                    f"The gzip body expands to more than {limit} bytes, the most this server "
                    "accepts. Send smaller batches.",
                    problems=[Problem("body", f"decompressed size exceeds {limit} bytes")],
                )
            if not stream.eof:
                raise zlib.error("the gzip stream is truncated")
            data = stream.unused_data
            if not data.strip(b"\x00"):
                return bytes(out)
    except zlib.error as exc:
        raise InvalidInput(
            f"The body is not valid gzip data: {exc}. Send it uncompressed or drop the "
            "Content-Encoding: gzip header.",
            problems=[Problem("body", f"invalid gzip data: {exc}")],
        ) from None


# --------------------------------------------------------------------------------------
# protobuf


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
        return _name(value.string_value)
    if which in ("int_value", "bool_value"):
        return getattr(value, which)
    if which == "double_value":
        return _finite(value.double_value)
    if which == "bytes_value":
        return value.bytes_value.hex()
    if depth >= MAX_DEPTH:
        raise _Reject("depth", f"attribute values nest deeper than {MAX_DEPTH} levels")
    if which == "array_value":
        return [_pb_value(item, depth + 1) for item in value.array_value.values]
    return _pb_attrs(value.kvlist_value.values, depth + 1)


def decode_protobuf(body: bytes) -> Decoded:
    """Decode an OTLP `ExportTraceServiceRequest` protobuf body."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # upb raises DecodeError, but nothing may leak whatever it is
        raise InvalidInput(
            f"The body is not a valid OTLP ExportTraceServiceRequest protobuf: {exc}. "
            "Send application/x-protobuf from an OTLP exporter, or application/json.",
            problems=[Problem("body", f"invalid protobuf: {exc}")],
        ) from None
    spans: list[DecodedSpan] = []
    tally: _Tally = {}
    append = spans.append
    for ri, resource_spans in enumerate(request.resource_spans):
        try:
            resource = _pb_attrs(resource_spans.resource.attributes, 0)
        except _Reject as reject:
            count = sum(len(ss.spans) for ss in resource_spans.scope_spans)
            _tally(tally, f"resource {ri}", reject, count)
            continue
        for si, scope_spans in enumerate(resource_spans.scope_spans):
            scope_name = _name(scope_spans.scope.name) or None
            for pi, span in enumerate(scope_spans.spans):
                try:
                    append(_pb_span(span, resource, scope_name))
                except _Reject as reject:
                    _tally(tally, _where(ri, si, pi), reject)
    return _decoded(spans, tally)


def _pb_span(span: Any, resource: dict[str, Any], scope_name: str | None) -> DecodedSpan:
    trace_id = span.trace_id
    span_id = span.span_id
    parent = span.parent_span_id
    if len(trace_id) != 16:
        raise _Reject("trace_id", f"trace_id must be 16 bytes, got {len(trace_id)}")
    if len(span_id) != 8:
        raise _Reject("span_id", f"span_id must be 8 bytes, got {len(span_id)}")
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        raise _Reject("zero_id", "trace_id and span_id must not be all zeros")
    if parent and len(parent) != 8:
        raise _Reject("parent", f"parent_span_id must be empty or 8 bytes, got {len(parent)}")
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    if end < start:
        raise _Reject("time", "end_time_unix_nano is before start_time_unix_nano")
    status = span.status
    events = [
        SpanEvent(_name(e.name), e.time_unix_nano, _pb_attrs(e.attributes, 0)) for e in span.events
    ]
    return DecodedSpan(
        resource, scope_name, trace_id.hex(), span_id.hex(),
        parent.hex() if parent and parent != _ZERO_SPAN else None, _name(span.name), span.kind,
        start, end, status.code, _name(status.message) or None, _pb_attrs(span.attributes, 0),
        events,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# JSON

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
        raise _Reject(kind, message)
    return number


def _uint64(value: Any, field: str) -> int:
    if value is None:
        return 0
    return _integer(value, False, field, f"{field} must be an unsigned 64-bit integer")


def _double(value: Any) -> float | str:
    if type(value) is float or type(value) is int:
        return _finite(float(value))
    if type(value) is str:
        special = _SPECIAL_DOUBLES.get(value)
        if special is not None:
            return special
        if 0 < len(value) <= 40 and value.isascii() and "_" not in value:
            try:
                return _finite(float(value))
            except ValueError:
                pass
    raise _Reject("value", "doubleValue must be a number")


def _bytes_hex(value: Any) -> str:
    if type(value) is not str:
        raise _Reject("value", "bytesValue must be a base64 string")
    text = value.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True).hex()
    except (binascii.Error, ValueError):
        raise _Reject("value", "bytesValue must be a base64 string") from None


def _json_value(value: Any, depth: int) -> Any:
    if type(value) is not dict:
        if value is None:
            return None
        raise _Reject("value", "an attribute value must be an AnyValue object")
    for member, raw in value.items():
        kind = _VALUE_KINDS.get(member)
        if kind is None or raw is None:
            continue
        if kind == _STR:
            if type(raw) is str:
                return raw
            raise _Reject("value", "stringValue must be a string")
        if kind == _INT:
            return _integer(raw, True, "value", "intValue must be a 64-bit integer")
        if kind == _BOOL:
            if type(raw) is bool:
                return raw
            raise _Reject("value", "boolValue must be true or false")
        if kind == _DOUBLE:
            return _double(raw)
        if kind == _BYTES:
            return _bytes_hex(raw)
        if depth >= MAX_DEPTH:
            raise _Reject("depth", f"attribute values nest deeper than {MAX_DEPTH} levels")
        if type(raw) is not dict:
            raise _Reject("value", "arrayValue and kvlistValue must be objects")
        items = raw.get("values")
        if items is None:
            items = []
        elif type(items) is not list:
            raise _Reject("value", "arrayValue.values and kvlistValue.values must be lists")
        if kind == _ARRAY:
            return [_json_value(item, depth + 1) for item in items]
        return _json_attrs(items, depth + 1)
    return None


def _json_attrs(items: Any, depth: int) -> dict[str, Any]:
    if items is None:
        return {}
    if type(items) is not list:
        raise _Reject("value", "attributes must be a list of {key, value} objects")
    out: dict[str, Any] = {}
    for item in items:
        if type(item) is not dict:
            raise _Reject("value", "attributes must be a list of {key, value} objects")
        key = item.get("key")
        if type(key) is not str:
            raise _Reject("value", "an attribute key must be a string")
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
    raise _Reject(field, f"{field} must be {size * 2} hex characters")


def _enum(value: Any, names: dict[str, int], field: str) -> int:
    if value is None:
        return 0
    if type(value) is int and -(1 << 31) <= value < (1 << 31):
        return value
    if type(value) is str and value in names:
        return names[value]
    raise _Reject(field, f"{field} must be an enum number or name")


def _optional_str(value: Any, field: str) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise _Reject(field, f"{field} must be a string")
    return value


def _json_span(span: Any, resource: dict[str, Any], scope_name: str | None) -> DecodedSpan:
    if type(span) is not dict:
        raise _Reject("span", "a span must be a JSON object")
    trace_id = _hex_id(_get(span, "traceId", "trace_id"), "trace_id", 16)
    span_id = _hex_id(_get(span, "spanId", "span_id"), "span_id", 8)
    if trace_id == _ZERO_TRACE_HEX or span_id == _ZERO_SPAN_HEX:
        raise _Reject("zero_id", "trace_id and span_id must not be all zeros")
    parent_raw = _get(span, "parentSpanId", "parent_span_id")
    parent = None
    if parent_raw is not None and parent_raw != "":
        try:
            parent = _hex_id(parent_raw, "parent_span_id", 8)
        except _Reject:
            raise _Reject("parent", "parent_span_id must be empty or 16 hex characters") from None
        if parent == _ZERO_SPAN_HEX:
            parent = None
    start = _uint64(_get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    end = _uint64(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    if end < start:
        raise _Reject("time", "end_time_unix_nano is before start_time_unix_nano")
    status = span.get("status") or {}
    if type(status) is not dict:
        raise _Reject("status", "status must be an object")
    events_raw = span.get("events") or []
    if type(events_raw) is not list or not all(type(e) is dict for e in events_raw):
        raise _Reject("events", "events must be a list of objects")
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
    except Exception as exc:  # orjson.JSONDecodeError, or a body of the wrong type
        raise InvalidInput(
            f"The body is not valid JSON: {exc}. Send OTLP/JSON or application/x-protobuf.",
            problems=[Problem("body", f"invalid JSON: {exc}")],
        ) from None
    if type(document) is not dict:
        raise _fatal("$", "the top level must be an object")
    spans: list[DecodedSpan] = []
    tally: _Tally = {}
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
        except _Reject as reject:
            count = sum(len(ss.get("spans") or ()) for ss in scopes if ss)
            _tally(tally, f"resource {ri}", reject, count)
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
                except _Reject as reject:
                    _tally(tally, _where(ri, si, pi), reject)
    if b"\\u0000" in body:  # JSON can only carry a NUL character escaped
        _strip_nul(spans)
    return _decoded(spans, tally)
