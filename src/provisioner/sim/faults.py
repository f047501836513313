"""Remote calls, counted as the real services would charge them, and made to fail in the fault windows.

Owns the call counts by endpoint, the fault log and the fault stream of randomness. May not touch: the queues,
the phones, the jobs (a launch that timed out but went through is the fleet's to submit).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable

from provisioner import Clock, RemoteError, monotonic

from .config import FaultSpec, FleetConfig


class TimedOut(RemoteError):
    """A call that got no answer in time; for a launch, ``went_through`` says whether the cloud got it anyway."""

    def __init__(self, message: str, went_through: bool = False) -> None:
        super().__init__(message)
        self.went_through = went_through


class Faults:
    """``gate(endpoint, calls)`` before each remote call."""

    def __init__(self, config: FleetConfig, clock: Clock, lock: threading.RLock, sim_now: Callable[[], float],
                 started_at: float) -> None:
        self.config, self.clock, self._lock, self._sim_now, self._started_at = config, clock, lock, sim_now, started_at
        self._fault_rng = random.Random(f"{config.seed}/faults")
        self.log: list[tuple[float, str, str]] = []  # (when, endpoint, kind) of every call made to fail
        self.calls: Counter[str] = Counter()

    def gate(self, endpoint: str, calls: int = 1) -> None:
        """Count the call(s) the real service would need; during a fault window on the endpoint, fail it."""
        with self._lock:
            self.calls[endpoint] += calls
            now = max(self._sim_now(), monotonic(self.clock))
            fault = self._fault_now(endpoint, now)
            if fault is None:
                return
            self.log.append((now, endpoint, fault.kind))
            went_through = endpoint == "launch" and self._fault_rng.random() < fault.went_through
        if fault.kind == "timeout":
            self.clock.sleep(fault.timeout_seconds)  # outside the lock: other callers go on meanwhile
            raise TimedOut(f"sim: {endpoint}: no answer within {fault.timeout_seconds:g} s", went_through)
        if fault.kind == "garbage":
            raise RemoteError(f"sim: {endpoint}: answered garbage (HTTP 200, body is not JSON)")
        raise RemoteError(f"sim: {endpoint}: HTTP 503 Service Unavailable")

    def _fault_now(self, endpoint: str, now: float) -> FaultSpec | None:
        since = now - self._started_at
        for fault in self.config.faults:
            if fault.start <= since < fault.end and endpoint in fault.endpoints:
                if fault.rate >= 1 or self._fault_rng.random() < fault.rate:
                    return fault
        return None
