"""The simulation's time and its events, in time order (ties in the order they were scheduled).

Owns the simulation's ``now`` and the event heap. May not touch: what an event does (its handler's room does).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any


class Timeline:
    __slots__ = ("now", "_events", "_seq")

    def __init__(self, now: float) -> None:
        self.now = now
        self._events: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = itertools.count()

    def at(self, when: float, handler: Callable[[Any], None], arg: Any) -> None:
        heapq.heappush(self._events, (when, next(self._seq), handler, arg))

    def advance(self, clock_now: float) -> float:
        """Process every event due up to ``clock_now`` (never back in time); return the simulation's time."""
        now = max(self.now, clock_now)
        events = self._events
        while events and events[0][0] <= now:
            when, _, handler, arg = heapq.heappop(events)
            self.now = when
            handler(arg)
        self.now = now
        return now
