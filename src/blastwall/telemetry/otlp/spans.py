"""What the decoders make: spans as plain Python, and the rules they share (rejecting a
span and counting why, taking out the NUL character, non-finite doubles as strings)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 32
"""Deepest nesting of array/kvlist attribute values accepted; deeper rejects the span."""

_U64_MAX = (1 << 64) - 1


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


class Reject(Exception):
    """One span (or one resource's spans) cannot be used; `kind` groups the messages."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# kind of rejection -> [first message, number of spans]
Tally = dict[str, list[Any]]


def count_reject(tally: Tally, where: str, reject: Reject, spans: int = 1) -> None:
    if spans > 0:
        tally.setdefault(reject.kind, [f"{where}: {reject.message}", 0])[1] += spans


def decoded(spans: list[DecodedSpan], tally: Tally) -> Decoded:
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


def no_nul(value: str) -> str:
    return value if "\x00" not in value else value.replace("\x00", "")


def strip_nul(spans: list[DecodedSpan]) -> None:
    """Take the NUL character out of every string of `spans`, in place; spans that shared a
    resource still share one."""
    resources: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for span in spans:
        seen = resources.get(id(span.resource))
        if seen is None:
            seen = resources[id(span.resource)] = (span.resource, nul_free(span.resource))
        span.resource = seen[1]
        span.scope_name = nul_free(span.scope_name) or None
        span.name = no_nul(span.name)
        span.status_message = nul_free(span.status_message) or None
        span.attributes = nul_free(span.attributes)
        for event in span.events:
            event.name = no_nul(event.name)
            event.attributes = nul_free(event.attributes)


def position(ri: int, si: int, pi: int) -> str:
    return f"resource {ri}, scope {si}, span {pi}"


def finite(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
