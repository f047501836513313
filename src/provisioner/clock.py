"""The one source of time. The loop, the ledger, the simulated fleet and every plugin read the same clock
(``PluginContext.clock``), so a test or a simulation can run them on a virtual clock.

Two times, for two uses:

- ``now()``, the wall clock (seconds since the epoch), is for what is *recorded* (ledger rows, log lines) and
  what is *compared with a remote service's timestamps* (a job's ``created_at`` when adopting it, a worker's
  first claim, the window of a provider's job list). NTP, an operator or a wrong RTC may step it either way.
- ``monotonic()`` never steps: every *wait* and *interval* is measured on it (the pacing between submissions,
  the cycle's sleep, retry backoffs and deadlines, how long a launch covers a pending task, the maximum startup
  time, the backoffs and holds of a phone). Its zero means nothing; only differences do.

An event recorded in wall time gets its monotonic time once (an ``Anchors`` book): at the moment it happens when
this process makes it (a launch sent, a submission failed), else from its wall-clock age when this process
first reads it (a launch loaded back from the ledger after a restart, a hold made by ``provisioner phones``).
A later step of the wall clock changes neither, so no cover, backoff or hold is ended or stretched by one.
Where our times meet a service's, a step of our wall clock (which the service's clock does not follow) is
guarded both ways: the providers' job list ends at the earlier of the wall time and the wall time of the first
observation plus the monotonic time since (``cycle.observe``), and a worker's first claim counts as ours only if
it came after both of them (``cycle.accounting.claimed``).

Where the ledger compares recorded wall times with each other to tell "after" (limitation): a step of the wall
clock back can misorder events recorded on either side of it. The launches in flight are kept in the order this
process added them, and a phone's last use never goes back (``Ledger.in_flight``, ``Ledger.last_used``); but the
rows of different tables share no sequence, so these still compare wall times: a failing job "after" a phone's
hold or another ending (``Ledger.failing_jobs``), a failed submission "after" an operator's release
(``cycle.health``), and the order of rows loaded from disk after a restart. After a step back of ``d`` seconds,
failures in the next ``d`` seconds may be taken as before the phone's last hold or release (not counted: the phone
is held later than it should be), and failures before a step that came between them and their hold may be taken
as after it (counted again: the loop makes no second hold of a phone held for its jobs already). Both end once the
wall clock passes the step.

A plugin never calls ``time.time()``, ``time.monotonic()`` or ``time.sleep()`` for what the host's time governs:
it calls ``context.clock.now()``, ``monotonic(context.clock)`` (or ``context.clock.monotonic()``) and
``context.clock.sleep(seconds)``. A clock of a plugin's or a test's own that predates ``monotonic()`` (only
``now`` and ``sleep``) still works: ``monotonic(clock)`` falls back to its ``now()``, as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Protocol


class Clock(Protocol):
    """What a clock offers: the wall time, a time that never steps, and a wait."""

    def now(self) -> float:
        """Seconds since the epoch (the wall clock: may step)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps (only differences mean anything). Read it with
        ``provisioner.monotonic(clock)``: a clock without this method falls back to ``now()``."""
        ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        """Wait ``seconds``, or until ``wake`` is set."""
        ...


def steady(clock: object) -> Callable[[], float]:
    """The clock's ``monotonic`` (its ``now`` for a clock that has none): bind once, call often."""
    return getattr(clock, "monotonic", None) or clock.now  # type: ignore[attr-defined]


def monotonic(clock: object) -> float:
    """``clock.monotonic()``, or ``clock.now()`` for a clock that predates it."""
    return steady(clock)()


def monotonic_at(clock: object, now: float) -> float:
    """The monotonic time of the wall time ``now`` at the clock's present offset (for callers that name a time in
    wall terms only, such as ``status`` or a test asking about ``now + 60``)."""
    return now + (monotonic(clock) - clock.now())  # type: ignore[attr-defined]


class SystemClock:
    """The real time: what the daemon runs on."""

    def now(self) -> float:
        return time.time()

    monotonic = staticmethod(time.monotonic)

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        if seconds <= 0:
            return
        if wake is None:
            time.sleep(seconds)  # both wait on CLOCK_MONOTONIC: a step of the wall clock shortens no wait
        else:
            wake.wait(seconds)


class VirtualClock:
    """A clock that only moves when told to: ``sleep`` advances it at once, ``advance`` moves it on.

    For tests and simulations: a plugin that retries with ``clock.sleep`` returns at once on it, and the time it
    would have taken is ``clock.now() - start``. Its monotonic time starts at ``start`` too and moves with it,
    but for ``step``, which moves the wall time alone (a test's NTP step). Example::

        clock = VirtualClock(1_750_000_000.0)
        clock.sleep(30)
        assert clock.now() == clock.monotonic() == 1_750_000_030.0
        clock.step(-3600)  # the wall clock stepped back an hour; no wait is any longer for it
        assert clock.monotonic() - clock.now() == 3600
    """

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._now = self._mono = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)
            self._mono += max(0.0, seconds)

    def step(self, seconds: float) -> None:
        """Step the wall time alone, either way (for tests: what NTP or an operator does to a host's clock)."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        if wake is not None and wake.is_set():
            return
        self.advance(seconds)


class Anchors:
    """The monotonic times of events recorded in wall time, each taken once: ``mark(key, mono)`` when this
    process makes the event, else ``of(key, wall, now, mono)`` the first time it reads it (from its wall-clock age
    then). Later calls return the same time, whatever the wall clock did since. Thread-safe for one writer per
    key (a dict's get and set are atomic)."""

    def __init__(self) -> None:
        self.at: dict[Hashable, float] = {}

    def mark(self, key: Hashable, mono: float) -> None:
        self.at[key] = mono

    def of(self, key: Hashable, wall: float, now: float, mono: float) -> float:
        at = self.at.get(key)
        if at is None:
            at = self.at[key] = mono - (now - wall)
        return at

    def keep(self, alive: Callable[[Hashable, float], bool]) -> None:
        """Forget the anchors ``alive(key, mono)`` says are no longer needed."""
        for key in [k for k, v in list(self.at.items()) if not alive(k, v)]:
            self.at.pop(key, None)  # deleted one by one: a mark made meanwhile by another thread stays
