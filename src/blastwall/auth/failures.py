"""Failed authentications: counted per source address and logged with rate limiting, never
written one row each to the audit log (a flood of requests without a valid token must cost
the server a counter, not a write)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW = 60.0
"""Seconds over which the failed authentications of one source address are logged once."""
MAX_SOURCES = 10_000
"""Source addresses counted apart at most; more are counted together (memory stays bounded
whatever the number of addresses an attacker sends from)."""
OTHER_SOURCES = "(other addresses)"

log = logging.getLogger("blastwall.auth")


@dataclass
class _Tally:
    started: float
    unreported: int = 0


class FailedAuthentications:
    """Failed authentications, counted per source address and logged with rate limiting.

    A request without a valid token costs a counter here, not a row in the audit log: the
    first failure from an address is logged at once (with its reason); further ones within
    `window` seconds are counted and logged as one line with their number when the window
    ends (`flush`). An address that keeps failing gets one line per window.
    Thread-safe: the API counts from its event loop and from its worker threads."""

    def __init__(
        self,
        *,
        window: float = WINDOW,
        max_sources: int = MAX_SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.max_sources = max_sources
        self.clock = clock
        self.total = 0
        """Failures counted since the start."""
        self._tallies: dict[str, _Tally] = {}
        self._lock = threading.Lock()

    def failed(self, source: str | None, reason: str) -> None:
        """Count one failed authentication from `source` (an address)."""
        source = source or "unknown"
        now = self.clock()
        with self._lock:
            self.total += 1
            self._flush(now)
            if source not in self._tallies and len(self._tallies) >= self.max_sources:
                source = OTHER_SOURCES
            tally = self._tallies.get(source)
            if tally is None:
                self._tallies[source] = _Tally(started=now)
                log.warning("failed authentication from %s: %s", source, reason)
            else:
                tally.unreported += 1

    def flush(self, *, everything: bool = False) -> None:
        """Log the counts of the windows that have ended (all of them with `everything`)."""
        with self._lock:
            self._flush(self.clock(), everything=everything)

    def _flush(self, now: float, *, everything: bool = False) -> None:
        # The tallies are kept oldest window first: the loop stops at the first still open.
        while self._tallies:
            source, tally = next(iter(self._tallies.items()))
            if not everything and now - tally.started < self.window:
                return
            del self._tallies[source]
            if tally.unreported:
                log.warning(
                    "%d more failed authentication(s) from %s in the last %.0f s",
                    tally.unreported,
                    source,
                    now - tally.started,
                )
                if not everything:  # still failing: go on counting, not logging each one
                    self._tallies[source] = _Tally(started=now)
