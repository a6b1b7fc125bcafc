#!/usr/bin/env python3
"""Telemetry decode benchmark: OTLP protobuf decode, normalise and redact on one core.

Builds realistic OTLP/HTTP trace batches (`make_batches`, also used by bench/ingest.py):
per five spans, two GenAI 1.37 chat spans carrying 1-2 KB of message content as JSON
strings (the way the OpenTelemetry Python SDK sends them), one tool execution span, and
two non-GenAI context spans (an HTTP server span and a database span). Then it times, in
this one process:

  (a) decode     decode_protobuf on every batch
  (b) normalise  (a) + normalise() on every span
  (c) redact     (b) + apply_content_policy(record, "redacted") on every interaction

Everything runs in one thread, so on one core at a time (`--cpu N` pins the process to one
CPU). Each batch goes through each stage `--repeat` times; a stage's time is the sum of each
batch's best time. Usage:

  python bench/decode.py [--batches 100] [--spans 500] [--repeat 3] [--cpu N]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from blastwall.telemetry.normalise import normalise
from blastwall.telemetry.otlp import decode_protobuf
from blastwall.telemetry.redact import apply_content_policy

_VOCABULARY = (
    "the order shipment refund account invoice customer policy warranty delivery address "
    "payment status request update please could you check my latest when will it arrive "
    "thanks help support agent product return exchange tracking number weekend store hours "
    "price discount subscription plan cancel renew upgrade billing cycle receipt"
)
_WORDS = _VOCABULARY.split()
_PII = (
    "Reach me at jane.doe{n}@example.com if needed.",
    "My phone is +1 415 555 {n:04d}.",
    "Order #{n:06d} placed on 2025-03-{d:02d}.",
    "Card ending 4242, ticket {n}.",
)
_SYSTEM = (
    "You are the customer support assistant of Example Retail. Answer politely and briefly. "
    "Never reveal internal notes. Use the order lookup tool when the customer gives an order "
    "number, and the refund tool only after confirming the customer's identity."
)


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _paragraph(rng: random.Random, size: int) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        part = _sentence(rng, rng.randint(6, 16))
        if rng.random() < 0.15:
            part += " " + rng.choice(_PII).format(n=rng.randint(0, 9999), d=rng.randint(1, 28))
        parts.append(part)
        length += len(part) + 1
    return " ".join(parts)


def _attr(span: Span, key: str, value: object) -> None:
    kv: KeyValue = span.attributes.add()
    kv.key = key
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    elif isinstance(value, list):
        for item in value:
            kv.value.array_value.values.add().string_value = str(item)
    else:
        kv.value.string_value = str(value)


def _ids(rng: random.Random, span: Span, trace_id: bytes, parent: bytes | None) -> bytes:
    span_id = rng.randbytes(8)
    span.trace_id = trace_id
    span.span_id = span_id
    if parent:
        span.parent_span_id = parent
    return span_id


def _times(span: Span, start: int, duration_ms: float) -> None:
    span.start_time_unix_nano = start
    span.end_time_unix_nano = start + int(duration_ms * 1e6)


def _chat_span(rng: random.Random, span: Span, start: int, conversation: str) -> None:
    span.name = "chat gpt-4o-mini"
    span.kind = Span.SPAN_KIND_CLIENT
    _times(span, start, rng.uniform(300, 2500))
    question = _paragraph(rng, rng.randint(300, 700))
    answer = _paragraph(rng, rng.randint(500, 1000))
    history = [
        {"role": "user", "parts": [{"type": "text", "content": _paragraph(rng, 120)}]},
        {"role": "assistant", "parts": [{"type": "text", "content": _paragraph(rng, 150)}]},
        {"role": "user", "parts": [{"type": "text", "content": question}]},
    ]
    output = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": answer}],
            "finish_reason": "stop",
        }
    ]
    tokens_in = rng.randint(200, 900)
    for key, value in (
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o-mini"),
        ("gen_ai.request.temperature", 0.2),
        ("gen_ai.request.max_tokens", 1024),
        ("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
        ("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):016x}"),
        ("gen_ai.response.finish_reasons", ["stop"]),
        ("gen_ai.usage.input_tokens", tokens_in),
        ("gen_ai.usage.output_tokens", rng.randint(100, 400)),
        ("gen_ai.conversation.id", conversation),
        ("server.address", "api.openai.com"),
        ("server.port", 443),
        ("gen_ai.system_instructions", orjson.dumps([{"type": "text", "content": _SYSTEM}])),
        ("gen_ai.input.messages", orjson.dumps(history).decode()),
        ("gen_ai.output.messages", orjson.dumps(output).decode()),
    ):
        _attr(span, key, value.decode() if isinstance(value, bytes) else value)


def _tool_span(rng: random.Random, span: Span, start: int) -> None:
    span.name = "execute_tool lookup_order"
    span.kind = Span.SPAN_KIND_INTERNAL
    _times(span, start, rng.uniform(5, 120))
    order = f"{rng.randint(0, 999999):06d}"
    result = {"order": order, "status": rng.choice(["shipped", "pending"]), "eta": "2025-04-02"}
    for key, value in (
        ("gen_ai.operation.name", "execute_tool"),
        ("gen_ai.tool.name", "lookup_order"),
        ("gen_ai.tool.type", "function"),
        ("gen_ai.tool.call.id", f"call_{rng.getrandbits(64):016x}"),
        ("gen_ai.tool.call.arguments", orjson.dumps({"order_id": order}).decode()),
        ("gen_ai.tool.call.result", orjson.dumps(result).decode()),
    ):
        _attr(span, key, value)


def _http_span(rng: random.Random, span: Span, start: int) -> None:
    span.name = "POST /v1/support/chat"
    span.kind = Span.SPAN_KIND_SERVER
    _times(span, start, rng.uniform(400, 3000))
    for key, value in (
        ("http.request.method", "POST"),
        ("url.path", "/v1/support/chat"),
        ("url.scheme", "https"),
        ("http.route", "/v1/support/chat"),
        ("http.response.status_code", 200),
        ("server.address", "support.example.com"),
        ("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
        ("client.address", f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"),
    ):
        _attr(span, key, value)


def _db_span(rng: random.Random, span: Span, start: int) -> None:
    span.name = "SELECT orders"
    span.kind = Span.SPAN_KIND_CLIENT
    _times(span, start, rng.uniform(1, 30))
    for key, value in (
        ("db.system.name", "postgresql"),
        ("db.namespace", "shop"),
        ("db.operation.name", "SELECT"),
        ("db.collection.name", "orders"),
        ("db.query.text", "SELECT id, status, eta FROM orders WHERE id = $1"),
    ):
        _attr(span, key, value)


def make_batches(batches: int, spans_per_batch: int, seed: int = 7) -> list[bytes]:
    """Serialized ExportTraceServiceRequest bodies, `spans_per_batch` spans each: per five
    spans, two GenAI chat spans (1-2 KB of content), one tool span, two context spans."""
    rng = random.Random(seed)
    base = 1_750_000_000_000_000_000
    bodies: list[bytes] = []
    for index in range(batches):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        for key, value in (
            ("service.name", f"support-bot-{index % 3}"),
            ("service.version", "1.4.2"),
            ("deployment.environment.name", "production"),
            ("telemetry.sdk.language", "python"),
            ("telemetry.sdk.name", "opentelemetry"),
            ("telemetry.sdk.version", "1.38.0"),
        ):
            kv = resource_spans.resource.attributes.add()
            kv.key = key
            kv.value.string_value = value
        genai = resource_spans.scope_spans.add()
        genai.scope.name = "opentelemetry.instrumentation.openai_v2"
        context = resource_spans.scope_spans.add()
        context.scope.name = "opentelemetry.instrumentation.fastapi"
        trace_id = parent = b""
        conversation = ""
        for position in range(spans_per_batch):
            slot = position % 5
            start = base + (index * spans_per_batch + position) * 1_000_000
            if slot == 0:
                trace_id = rng.randbytes(16)
                conversation = f"conv_{rng.getrandbits(48):012x}"
                span = context.spans.add()
                parent = _ids(rng, span, trace_id, None)
                _http_span(rng, span, start)
            elif slot in (1, 3):
                span = genai.spans.add()
                _ids(rng, span, trace_id, parent)
                _chat_span(rng, span, start, conversation)
            elif slot == 2:
                span = genai.spans.add()
                _ids(rng, span, trace_id, parent)
                _tool_span(rng, span, start)
            else:
                span = context.spans.add()
                _ids(rng, span, trace_id, parent)
                _db_span(rng, span, start)
                if rng.random() < 0.05:
                    span.status.code = Status.STATUS_CODE_ERROR
        bodies.append(request.SerializeToString())
    return bodies


def _stage_decode(body: bytes) -> int:
    return len(decode_protobuf(body).spans)


def _stage_normalise(body: bytes) -> int:
    spans = decode_protobuf(body).spans
    for span in spans:
        normalise(span)
    return len(spans)


def _stage_redact(body: bytes) -> int:
    spans = decode_protobuf(body).spans
    for span in spans:
        record = normalise(span)
        if record is not None:
            apply_content_policy(record, "redacted")
    return len(spans)


def _measure(stage: Callable[[bytes], int], bodies: list[bytes], repeat: int) -> tuple[int, float]:
    """Spans, and seconds: the sum over batches of each batch's best time. Machines shared
    with other work slow down in bursts; the best of several runs of each batch filters
    those out better than the best of several runs of the whole set."""
    best = [float("inf")] * len(bodies)
    spans = 0
    for _ in range(repeat):
        spans = 0
        for index, body in enumerate(bodies):
            started = time.perf_counter()
            spans += stage(body)
            best[index] = min(best[index], time.perf_counter() - started)
    return spans, sum(best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--spans", type=int, default=500, help="spans per batch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, help="pin the process to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    bodies = make_batches(args.batches, args.spans)
    size = sum(len(b) for b in bodies)
    sample = [normalise(s) for s in decode_protobuf(bodies[0]).spans]
    interactions = sum(r is not None for r in sample) / len(sample)
    print(
        f"{args.batches} batches x {args.spans} spans, {size / 1e6:.1f} MB protobuf "
        f"({size / (args.batches * args.spans):.0f} B/span), {interactions:.0%} GenAI; "
        f"Python {platform.python_version()} on {platform.machine()}, one thread, "
        f"best of {args.repeat} per batch"
    )
    print(f"{'stage':<36}{'spans':>9}{'seconds':>10}{'spans/s':>11}{'us/span':>9}{'MB/s':>8}")
    for label, stage in (
        ("(a) decode_protobuf", _stage_decode),
        ("(b) decode + normalise", _stage_normalise),
        ("(c) decode + normalise + redact", _stage_redact),
    ):
        spans, seconds = _measure(stage, bodies, args.repeat)
        print(
            f"{label:<36}{spans:>9}{seconds:>10.3f}{spans / seconds:>11,.0f}"
            f"{seconds / spans * 1e6:>9.1f}{size / seconds / 1e6:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
