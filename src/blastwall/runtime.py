"""Process settings of Blastwall's long-running processes (the server, detection workers)."""

from __future__ import annotations

import gc

GC_THRESHOLD = 100_000
"""Allocations between two collections of the youngest generation (Python's default is 700)."""


def tune_gc() -> None:
    """Set the garbage collector for a process that handles batches of telemetry, once it has
    loaded what it needs. Everything loaded so far is frozen out of the collector's walks,
    and collections are rarer: an OTLP batch of 500 spans is some 50,000 objects, alive until
    it is stored; with the default threshold the collector ran dozens of times per batch,
    moved the batch into the oldest generation and then walked all of it with everything the
    process had loaded (a quarter of the server's CPU time on ingest)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)
