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

from blastwall.telemetry.otlp.compression import gunzip
from blastwall.telemetry.otlp.json_body import decode_json
from blastwall.telemetry.otlp.protobuf import decode_protobuf
from blastwall.telemetry.otlp.spans import MAX_DEPTH, Decoded, DecodedSpan, SpanEvent, nul_free

__all__ = [
    "MAX_DEPTH",
    "Decoded",
    "DecodedSpan",
    "SpanEvent",
    "decode_json",
    "decode_protobuf",
    "gunzip",
    "nul_free",
]
