"""The one source of time. The loop, the ledger, the simulated fleet and every plugin read the same clock
(``PluginContext.clock``), so a test or a simulation can run them on a virtual clock.

A plugin never calls ``time.time()`` or ``time.sleep()`` for what the host's time governs (retry backoffs,
deadlines, job timestamps): it calls ``context.clock.now()`` and ``context.clock.sleep(seconds)``.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What a clock offers: the time now and a wait."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        """Wait ``seconds``, or until ``wake`` is set."""
        ...


class SystemClock:
    """The real time: what the daemon runs on."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        if seconds <= 0:
            return
        if wake is None:
            time.sleep(seconds)
        else:
            wake.wait(seconds)


class VirtualClock:
    """A clock that only moves when told to: ``sleep`` advances it at once, ``advance`` moves it on.

    For tests and simulations: a plugin that retries with ``clock.sleep`` returns at once on it, and the time it
    would have taken is ``clock.now() - start``. Example::

        clock = VirtualClock(1_750_000_000.0)
        clock.sleep(30)
        assert clock.now() == 1_750_000_030.0
    """

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        if wake is not None and wake.is_set():
            return
        self.advance(seconds)
