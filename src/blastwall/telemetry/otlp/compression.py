"""`Content-Encoding: gzip` undone, with a cap on the output size."""

from __future__ import annotations

import zlib

from blastwall.errors import InvalidInput, Problem


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
