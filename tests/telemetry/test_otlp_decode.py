"""OTLP/HTTP trace decoding: protobuf and JSON bodies, gzip, per-span rejection, hostile input."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import random
import re
from typing import Any

import orjson
import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from blastwall.errors import InvalidInput
from blastwall.telemetry.normalise import normalise
from blastwall.telemetry.otlp import (
    MAX_DEPTH,
    Decoded,
    DecodedSpan,
    SpanEvent,
    decode_json,
    decode_protobuf,
    gunzip,
)
from blastwall.telemetry.redact import apply_content_policy

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
PARENT = bytes.fromhex("eee19b7ec3c1b173")
START = 1_750_000_000_123_456_789
END = START + 1_500_000_000


def _set(value: AnyValue, python: Any) -> None:
    if isinstance(python, bool):
        value.bool_value = python
    elif isinstance(python, int):
        value.int_value = python
    elif isinstance(python, float):
        value.double_value = python
    elif isinstance(python, bytes):
        value.bytes_value = python
    elif isinstance(python, list):
        value.array_value.SetInParent()
        for item in python:
            _set(value.array_value.values.add(), item)
    elif isinstance(python, dict):
        value.kvlist_value.SetInParent()
        for key, item in python.items():
            kv = value.kvlist_value.values.add()
            kv.key = key
            _set(kv.value, item)
    else:
        value.string_value = python


def _attrs(target: Any, attrs: dict[str, Any]) -> None:
    for key, python in attrs.items():
        kv = target.add()
        kv.key = key
        _set(kv.value, python)


ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.request.temperature": 0.25,
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 0,
    "negative": -7,
    "stream": False,
    "flag": True,
    "empty": "",
    "blob": b"\x00\xffab",
    "gen_ai.response.finish_reasons": ["stop", "length"],
    "structured": {"role": "user", "parts": [{"type": "text", "content": "hé"}], "n": 2},
}


def _request(spans: list[dict[str, Any]] | None = None) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    _attrs(
        resource_spans.resource.attributes,
        {"service.name": "support-bot", "blastwall.system.id": "support-bot", "pid": 42},
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "opentelemetry.instrumentation.openai_v2"
    for fields in spans if spans is not None else [{}]:
        span = scope_spans.spans.add()
        span.trace_id = fields.get("trace_id", TRACE)
        span.span_id = fields.get("span_id", SPAN)
        span.parent_span_id = fields.get("parent_span_id", PARENT)
        span.name = fields.get("name", "chat gpt-4o")
        span.kind = fields.get("kind", Span.SPAN_KIND_CLIENT)
        span.start_time_unix_nano = fields.get("start", START)
        span.end_time_unix_nano = fields.get("end", END)
        _attrs(span.attributes, fields.get("attributes", ATTRIBUTES))
        event = span.events.add()
        event.name = "gen_ai.user.message"
        event.time_unix_nano = START + 5
        _attrs(event.attributes, {"content": "Hello", "gen_ai.system": "openai"})
        span.status.code = fields.get("status", Status.STATUS_CODE_ERROR)
        span.status.message = fields.get("status_message", "rate limited")
    return request


def _expected() -> DecodedSpan:
    attributes = dict(ATTRIBUTES)
    attributes["blob"] = "00ff6162"
    return DecodedSpan(
        resource={"service.name": "support-bot", "blastwall.system.id": "support-bot", "pid": 42},
        scope_name="opentelemetry.instrumentation.openai_v2",
        trace_id=TRACE.hex(),
        span_id=SPAN.hex(),
        parent_span_id=PARENT.hex(),
        name="chat gpt-4o",
        kind=3,
        start_ns=START,
        end_ns=END,
        status_code=2,
        status_message="rate limited",
        attributes=attributes,
        events=[
            SpanEvent(
                "gen_ai.user.message", START + 5, {"content": "Hello", "gen_ai.system": "openai"}
            )
        ],
    )


def _to_json(request: ExportTraceServiceRequest, **options: Any) -> dict[str, Any]:
    """OTLP/JSON: the proto3 JSON mapping, except that trace and span ids are hex."""
    document: dict[str, Any] = MessageToDict(request, **options)

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            for key in (
                "traceId",
                "spanId",
                "parentSpanId",
                "trace_id",
                "span_id",
                "parent_span_id",
            ):
                if key in node:
                    node[key] = base64.b64decode(node[key]).hex()
            for item in node.values():
                fix(item)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    fix(document)
    return document


# --- protobuf ---------------------------------------------------------------------------


def test_protobuf_decodes_every_field() -> None:
    decoded = decode_protobuf(_request().SerializeToString())
    assert decoded == Decoded(spans=[_expected()], rejected=0, errors=[])
    two = decode_protobuf(_request([{}, {"span_id": b"\x03" * 8}]).SerializeToString())
    assert two.spans[0].resource is two.spans[1].resource  # shared per resource


def test_protobuf_empty_body_is_an_empty_export() -> None:
    assert decode_protobuf(b"") == Decoded([], 0, [])


def test_protobuf_defaults_become_none() -> None:
    body = _request([{"parent_span_id": b"", "status": 0, "status_message": ""}])
    span = decode_protobuf(body.SerializeToString()).spans[0]
    assert span.parent_span_id is None
    assert span.status_message is None
    assert span.status_code == 0


def test_protobuf_non_finite_doubles_become_strings() -> None:
    body = _request([{"attributes": {"a": float("nan"), "b": float("inf"), "c": -float("inf")}}])
    span = decode_protobuf(body.SerializeToString()).spans[0]
    assert span.attributes == {"a": "NaN", "b": "Infinity", "c": "-Infinity"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trace_id": b"\x01" * 5}, "trace_id must be 16 bytes, got 5"),
        ({"span_id": b""}, "span_id must be 8 bytes, got 0"),
        ({"trace_id": bytes(16)}, "trace_id and span_id must not be all zeros"),
        ({"span_id": bytes(8)}, "trace_id and span_id must not be all zeros"),
        ({"parent_span_id": b"\x01\x02"}, "parent_span_id must be empty or 8 bytes, got 2"),
        ({"start": END, "end": START}, "end_time_unix_nano is before start_time_unix_nano"),
    ],
)
def test_protobuf_bad_spans_are_rejected_one_by_one(fields: dict[str, Any], message: str) -> None:
    body = _request([{}, fields, {}, fields]).SerializeToString()
    decoded = decode_protobuf(body)
    assert len(decoded.spans) == 2
    assert decoded.rejected == 2
    assert decoded.errors == [f"resource 0, scope 0, span 1: {message} (and 1 more like it)"]


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_attribute_nesting_is_bounded() -> None:
    deepest = {"attributes": {"ok": _nested(MAX_DEPTH)}}
    too_deep = {"attributes": {"bad": [{"x": _nested(MAX_DEPTH)}]}}
    decoded = decode_protobuf(_request([deepest, too_deep]).SerializeToString())
    assert decoded.spans[0].attributes["ok"] == _nested(MAX_DEPTH)
    assert decoded.rejected == 1
    assert "nest deeper than 32 levels" in decoded.errors[0]

    as_json = decode_json(orjson.dumps(_to_json(_request([deepest, too_deep]))))
    assert as_json.spans[0].attributes["ok"] == _nested(MAX_DEPTH)
    assert as_json.rejected == 1


def test_bad_resource_attributes_reject_the_resource_spans() -> None:
    request = _request([{}, {}])
    _attrs(request.resource_spans[0].resource.attributes, {"deep": _nested(MAX_DEPTH + 1)})
    decoded = decode_protobuf(request.SerializeToString())
    assert decoded.spans == []
    assert decoded.rejected == 2
    assert decoded.errors[0].startswith("resource 0: attribute values nest deeper")


@pytest.mark.parametrize(
    "body",
    [b"\xff\xff\xff", b"\x0a\x05abc", b"not a protobuf at all", b"\x0a\xff\xff\xff\xff\x0f"],
)
def test_protobuf_garbage_raises_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="not a valid OTLP ExportTraceServiceRequest protobuf"):
        decode_protobuf(body)


def test_protobuf_truncated_body_raises_invalid_input() -> None:
    body = _request().SerializeToString()
    with pytest.raises(InvalidInput) as raised:
        decode_protobuf(body[: len(body) // 2])
    assert raised.value.problems[0].location == "body"


def test_protobuf_bad_utf8_raises_invalid_input() -> None:
    body = _request([{"name": "MARKER"}]).SerializeToString().replace(b"MARKER", b"MA\xffKER")
    with pytest.raises(InvalidInput):
        decode_protobuf(body)


# --- JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"use_integers_for_enums": True}, {"preserving_proto_field_name": True}],
    ids=["camelCase", "enums-as-numbers", "snake_case"],
)
def test_json_decodes_to_the_same_spans_as_protobuf(options: dict[str, Any]) -> None:
    request = _request([{}, {"span_id": b"\x02" * 8, "kind": Span.SPAN_KIND_SERVER}])
    document = _to_json(request, **options)
    assert isinstance(
        document[
            "resourceSpans" if not options.get("preserving_proto_field_name") else "resource_spans"
        ],
        list,
    )
    assert decode_json(orjson.dumps(document)) == decode_protobuf(request.SerializeToString())


def test_json_accepts_numbers_for_int64_and_uppercase_hex_ids() -> None:
    document = _to_json(_request())
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["startTimeUnixNano"] == str(START)  # the proto3 JSON form
    span["startTimeUnixNano"] = START
    span["endTimeUnixNano"] = END
    span["traceId"] = span["traceId"].upper()
    for attribute in span["attributes"]:
        if "intValue" in attribute["value"]:
            attribute["value"]["intValue"] = int(attribute["value"]["intValue"])
    assert decode_json(orjson.dumps(document)).spans == [_expected()]


def test_json_minimal_span() -> None:
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": TRACE.hex(),
                                "spanId": SPAN.hex(),
                                "name": "x",
                                "kind": "SPAN_KIND_INTERNAL",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                                "attributes": [
                                    {"key": "d", "value": {"doubleValue": "NaN"}},
                                    {"key": "b", "value": {"bytesValue": "AP9hYg=="}},
                                    {"key": "e", "value": {}},
                                    {"key": "kv", "value": {"kvlistValue": {}}},
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    span = decode_json(orjson.dumps(body)).spans[0]
    assert (span.kind, span.start_ns, span.end_ns, span.scope_name, span.resource) == (
        1,
        1,
        2,
        None,
        {},
    )
    assert span.attributes == {"d": "NaN", "b": "00ff6162", "e": None, "kv": {}}


@pytest.mark.parametrize(
    ("span", "message"),
    [
        ({"traceId": "zz" * 16}, "trace_id must be 32 hex characters"),
        ({"traceId": base64.b64encode(TRACE).decode()}, "trace_id must be 32 hex characters"),
        ({"spanId": "abc"}, "span_id must be 16 hex characters"),
        ({"traceId": "0" * 32}, "trace_id and span_id must not be all zeros"),
        ({"startTimeUnixNano": "10", "endTimeUnixNano": "9"}, "end_time_unix_nano is before"),
        ({"startTimeUnixNano": "-1"}, "startTimeUnixNano must be an unsigned 64-bit integer"),
        ({"kind": "SPAN_KIND_BOGUS"}, "kind must be an enum number or name"),
        ({"attributes": [{"key": "a", "value": {"intValue": "1.5"}}]}, "intValue must be"),
        ({"attributes": [{"key": "a", "value": {"intValue": str(2**63)}}]}, "intValue must be"),
        ({"attributes": [{"key": "a", "value": {"bytesValue": "***"}}]}, "bytesValue must be"),
        ({"attributes": [{"key": 5, "value": {}}]}, "an attribute key must be a string"),
        ({"attributes": {"key": "a"}}, "attributes must be a list"),
        ({"status": {"code": "STATUS_CODE_MAYBE"}}, "status.code must be an enum"),
        ({"events": [{"name": 3}]}, "event name must be a string"),
    ],
)
def test_json_bad_spans_are_rejected_one_by_one(span: dict[str, Any], message: str) -> None:
    good = {"traceId": TRACE.hex(), "spanId": SPAN.hex()}
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [good, {**good, **span}, "oops"]}]}]}
    decoded = decode_json(orjson.dumps(body))
    assert len(decoded.spans) == 1
    assert decoded.rejected == 2
    assert decoded.errors[0].startswith("resource 0, scope 0, span 1: " + message)
    assert "span 2: a span must be a JSON object" in decoded.errors[-1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "the top level must be an object, at $"),
        (b'{"resourceSpans": {}}', "resourceSpans must be a list, at $.resourceSpans"),
        (
            b'{"resourceSpans": [1]}',
            "a resourceSpans item must be an object, at $.resourceSpans[0]",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": 3}]}',
            "scopeSpans must be a list, at $.resourceSpans[0].scopeSpans",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}',
            "spans must be a list, at $.resourceSpans[0].scopeSpans[0].spans",
        ),
        (b'{"resourceSpans": [{"resource": []}]}', "resource must be an object"),
        (b"[" * 2000 + b"]" * 2000, "not valid JSON"),
    ],
)
def test_json_undecodable_bodies_raise_invalid_input(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("$", r"\$")):
        decode_json(body)


def test_json_empty_export_is_accepted() -> None:
    assert decode_json(b"{}") == Decoded([], 0, [])
    assert decode_json(b'{"resourceSpans": []}') == Decoded([], 0, [])


# --- gzip -------------------------------------------------------------------------------


def test_gunzip_round_trip_and_multiple_members() -> None:
    body = _request().SerializeToString()
    assert gunzip(gzip.compress(body), 1 << 20) == body
    assert gunzip(gzip.compress(body) + gzip.compress(body), 1 << 20) == body + body
    assert gunzip(gzip.compress(body), len(body)) == body


def test_gunzip_refuses_a_bomb() -> None:
    bomb = gzip.compress(b"\0" * (10 << 20))
    assert len(bomb) < 20_000
    with pytest.raises(InvalidInput, match="expands to more than 1048576 bytes"):
        gunzip(bomb, 1 << 20)
    with pytest.raises(InvalidInput, match="expands to more than"):
        gunzip(gzip.compress(b"abcdef"), 5)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"plain text",
        gzip.compress(b"x" * 1000, mtime=0)[:-12],
        gzip.compress(b"x", mtime=0) + b"junk",
    ],
)
def test_gunzip_refuses_invalid_data(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="not valid gzip data"):
        gunzip(body, 1 << 20)


# --- hostile input: only InvalidInput may escape ----------------------------------------

VALID = _request([{}, {"span_id": b"\x03" * 8, "attributes": {"deep": _nested(MAX_DEPTH)}}])
VALID_PROTOBUF = VALID.SerializeToString()
VALID_JSON = orjson.dumps(_to_json(VALID))


def _counted(errors: list[str]) -> int:
    """The spans the grouped error messages stand for: one each, plus its "N more like it"."""
    more = (re.search(r" \(and (\d+) more like it\)$", error) for error in errors)
    return sum(1 + (int(m[1]) if m else 0) for m in more)


def _check(decode: Any, body: bytes) -> None:
    try:
        decoded = decode(body)
    except InvalidInput:
        return
    assert decoded.rejected == _counted(decoded.errors)  # every span dropped is accounted for
    for span in decoded.spans:
        assert len(span.trace_id) == 32 and len(span.span_id) == 16
        orjson.dumps(span.attributes)  # plain, storable values
        orjson.dumps(span.resource)
        record = normalise(span)
        if record is not None:
            for policy in ("redacted", "hashes"):
                apply_content_policy(record, policy)


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(body: bytes) -> None:
    _check(decode_protobuf, body)
    _check(decode_json, body)


@FUZZ
@given(st.integers(min_value=0, max_value=len(VALID_PROTOBUF)))
def test_fuzz_truncated_protobuf(cut: int) -> None:
    _check(decode_protobuf, VALID_PROTOBUF[:cut])


@FUZZ
@given(st.integers(min_value=0, max_value=len(VALID_JSON)))
def test_fuzz_truncated_json(cut: int) -> None:
    _check(decode_json, VALID_JSON[:cut])


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID_PROTOBUF) - 1), st.integers(0, 255)), max_size=8)
)
def test_fuzz_mutated_protobuf(flips: list[tuple[int, int]]) -> None:
    body = bytearray(VALID_PROTOBUF)
    for position, byte in flips:
        body[position] = byte
    _check(decode_protobuf, bytes(body))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["NaN", "Infinity", "AP9h", "5b8efff798038103d269b633813fc60c", "-1"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)


@FUZZ
@given(JSON_VALUES)
def test_fuzz_random_json_values(value: Any) -> None:
    _check(decode_json, json.dumps(value).encode())


_KEYS = st.sampled_from(
    [
        "resourceSpans", "scopeSpans", "spans", "resource", "scope", "attributes", "key",
        "value", "stringValue", "intValue", "doubleValue", "boolValue", "bytesValue",
        "arrayValue", "kvlistValue", "values", "traceId", "spanId", "parentSpanId", "name",
        "kind", "startTimeUnixNano", "endTimeUnixNano", "events", "timeUnixNano", "status",
        "code", "message", "trace_id", "string_value",
    ]
)  # fmt: skip
OTLP_SHAPED = st.recursive(
    JSON_VALUES, lambda children: st.dictionaries(_KEYS, children, max_size=6), max_leaves=60
)


@FUZZ
@given(OTLP_SHAPED)
def test_fuzz_otlp_shaped_json(value: Any) -> None:
    _check(decode_json, json.dumps(value).encode())


@FUZZ
@given(st.integers(0, 2**32), st.integers(1, 12))
def test_fuzz_mutated_json_document(seed: int, count: int) -> None:
    """Replace random nodes of a valid OTLP/JSON document by random values."""
    rng = random.Random(seed)
    document = _to_json(VALID)
    replacements: list[Any] = [
        None,
        1,
        -1,
        "x",
        "",
        [],
        {},
        True,
        2**64,
        "NaN",
        [{}],
        {"values": 3},
    ]
    for _ in range(count):
        node: Any = document
        for _ in range(rng.randint(1, 12)):
            children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
            if not children:
                break
            key, child = rng.choice(children)
            if not isinstance(child, dict | list) or rng.random() < 0.2:
                node[key] = copy.deepcopy(rng.choice(replacements))
                break
            node = child
    _check(decode_json, json.dumps(document).encode())
