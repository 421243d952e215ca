"""Stops asking a CRM that keeps failing, for a while: one circuit breaker per CRM origin.

Why: a CRM that hangs costs every caller the lookup's whole timeout in silence and holds a
server thread for it; with enough calls arriving the threads run out and every webhook
waits, menus included. After `failures` failed lookups in a row to one origin (scheme, host,
port), lookups there fail at once for `cooldown` seconds, so callers go straight down the
flow's `on_failure` branch. Then one lookup is let through as a trial: if the CRM answers,
lookups resume; if not, they stop for another cooldown.

Kept per server process, on purpose: it is a guess about the CRM's health, not call state,
so each process (each node) learns it on its own and nothing needs sharing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from .clock import Clock

log = logging.getLogger("ivr_server.lookup")


@dataclass
class _Circuit:
    failures: int = 0  # in a row
    open_until: dt.datetime | None = None  # lookups fail at once until then
    trying: bool = False  # a trial lookup is out


class CircuitBreaker:
    """`allow(origin)` before a lookup (None, or why it is skipped); `record` its result."""

    def __init__(self, failures: int, cooldown: float, clock: Clock):
        self.failures, self.cooldown, self.clock = failures, cooldown, clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.failures > 0

    def allow(self, origin: str) -> str | None:
        if not self.enabled:
            return None
        with self._lock:
            circuit = self._circuits.get(origin)
            if circuit is None or circuit.open_until is None:
                return None
            now = self.clock()
            if now >= circuit.open_until and not circuit.trying:
                circuit.trying = True  # this lookup is the trial; the others still skip
                return None
            return (f"skipped: {origin} failed {circuit.failures} lookups in a row; "
                    f"trying it again after {self.cooldown:g}s")

    def record(self, origin: str, healthy: bool) -> None:
        """`healthy`: the CRM answered (any answer below 500 but 429), even a 'not found'."""
        if not self.enabled:
            return
        with self._lock:
            if healthy:
                closed = self._circuits.pop(origin, None)
                if closed is not None and closed.open_until is not None:
                    log.warning("CRM %s answers again: lookups resume", origin)
                return
            circuit = self._circuits.setdefault(origin, _Circuit())
            circuit.failures += 1
            circuit.trying = False
            if circuit.failures >= self.failures:
                if circuit.open_until is None:
                    log.warning("CRM %s failed %d lookups in a row: callers skip its lookups "
                                "for %gs at a time until it answers", origin,
                                circuit.failures, self.cooldown)
                circuit.open_until = self.clock() + dt.timedelta(seconds=self.cooldown)
