"""Warm workers: launches made ahead of demand, so that a task arriving finds a worker already waiting.

A pool's ``warm`` is a number of workers to keep started and waiting beyond its pending tasks, or ``"auto"``.
The planner then wants ``pending + warm - starting`` launches for the pool: the pending tasks of every pool
first, then every ``auto`` pool's expected demand (below), then the rest of the warm launches (the margins); it
never takes more phones than are free, so the pool's free phones cap the warm workers too.

``"auto"`` sizes the target from

- ``r``, the arrival rate (tasks a second) measured by :class:`Arrivals` from the queue's counts over
  ``warm_window_seconds``, less its chance part (``Arrivals.likely_rate``: a few arrivals keep no worker
  waiting); no rate yet, no warm worker;
- ``L``, the launch-to-claim time the loop learns from the ledger's demand launches
  (``Provisioner.claim_estimate``);
- ``T``, the pool's ``idle_timeout`` (how long its worker waits for a task before it exits), and ``s``, the part
  of a worker's start its idle timer already runs through;
- ``k``, ``warm_safety_factor``;

as::

    expected = round(r x L)              tasks expected within one launch-to-claim time: demand, served first
    usable   = floor(r x (T - s))        workers kept waiting that arrivals can use before they idle out
    warm     = min(round(k x r x L), expected + usable), capped by ``warm_max``   (round: to the nearest, halves up)

Why: the target counts every launch started and not yet claimed. Taken in turn by arrivals, the newest of
``warm`` launches gets its task about ``warm / r`` after it was made; it can claim from ``L`` on and idles out
at ``L + T - s``. The ``expected`` launches still starting are the ones the next launch-to-claim time's tasks
take; the rest wait, and more of them than ``r x (T - s)`` would wait longer than their idle timeout for a task
(the margin ``k`` adds for bursts is cut to that, never the expected demand). Rounding ``expected`` to the
nearest keeps a pool expecting under half a task per launch-to-claim time with no warm worker.

``s`` is learned per pool from its idle-outs (:class:`~provisioner.idle_outs.StartLearned`): an idle-out
lives ``L + T - s`` from launch to the end of its wait, so ``s >= L + T - life``, kept within ``[0, T]``
(``post`` and the cycle in which the loop sees the end make ``life`` look longer, so this errs low by those).
Before any idle-out it is 0 (``WORKER_START_SECONDS``): generic-worker starts its idle clock (``lastActive``)
just before its first claim, after its own start-up (config, features), and the job starts it
(``testRunnerCommand``) only after ``pre`` has installed it (the reference notes); the simulated fleet times it
so. Checked in generic-worker's ``main.go`` (``RunWorker``) as stored at taskcluster/taskcluster 004de5b5, a
later release than the pinned v87.0.0, whose source was not read: hence learned, not assumed, once there is
evidence.

Where ``(k - 1) x L > T - s`` (launch-to-claim long against the idle timeout) the cut binds. Waits between
arrivals are random, so a worker still idles out now and then: with one worker waiting, a gap of ``T`` between
two arrivals (probability ``exp(-r x T)``) idles it out, whatever the target.

A warm launch whose job ends without its worker ever claiming a task has *idled out*: the price of being
warm, counted apart from failures and from the "wasted" jobs of demand launches.
"""

from __future__ import annotations

import math
from collections import deque

from .ledger import Ledger
from .model import Launch, LaunchState, Pool, QueueCounts

DEMAND, WARM = "demand", "warm"
WORKER_START_SECONDS = 0.0  # s: the part of a worker's start its idle timer runs through (module docstring)
IDLE_TIMEOUT_DEFAULT = 600  # generic-worker's idleTimeoutSecs in production, for a pool that sets none
# Job outcomes that mean "ended normally": a warm launch ending so, unclaimed, idled out. LambdaTest reports such
# a job `completed`; the simulated fleet `wasted`. Any other outcome is a failure (or unknown), never an idle-out.
IDLE_OUT_OUTCOMES = ("completed", "wasted")


def is_idle_out(launch: Launch) -> bool:
    """A warm launch whose job ended normally without its worker ever claiming a task."""
    return (launch.kind == WARM and launch.state is LaunchState.ENDED and launch.claimed_at is None
            and launch.outcome in IDLE_OUT_OUTCOMES)


def idle_timeout(pool: Pool) -> float:
    return float(pool.idle_timeout if pool.idle_timeout is not None else IDLE_TIMEOUT_DEFAULT)


class Arrivals:
    """Each queue's task arrival rate, from the counts read every cycle.

    Between two cycles that both read a queue's counts, at least ``max(Δpending + claims, Δ(pending + claimed))``
    tasks arrived: a task leaves ``pending`` only when a worker claims it (``claims``: the claims the loop saw
    our launches' workers make in between), and ``pending + claimed`` only grows by arrivals (it shrinks as tasks
    finish). Both are lower bounds that never go negative (a count that is an upper bound, or a claim seen a cycle
    late, cannot make arrivals negative); together they stay close when one of them misses (another tool's
    workers claiming, tasks finishing). The rate is the arrivals over the time the window's intervals cover (at
    least half the window); a cycle whose counts are unknown breaks the chain (the interval around it is left out,
    not guessed).
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self._last: dict[str, tuple[float, int, int]] = {}  # queue -> (when, pending, claimed)
        self._intervals: dict[str, deque[tuple[float, float, int]]] = {}  # queue -> (ended at, seconds, arrivals)

    def observe(self, queue: str, now: float, counts: QueueCounts | None, claims: int = 0) -> None:
        """The queue's counts read at ``now``, a time on the monotonic clock (the loop's ``mono``): the intervals
        and the window are measured on it, so a step of the wall clock neither drops nor stretches one."""
        if counts is None:
            self._last.pop(queue, None)
            return
        last = self._last.get(queue)
        self._last[queue] = (now, counts.pending, counts.claimed)
        if last is None or now <= last[0]:
            return
        when, pending, claimed = last
        arrived = max(0, counts.pending - pending + claims, counts.pending + counts.claimed - pending - claimed)
        intervals = self._intervals.setdefault(queue, deque())
        intervals.append((now, now - when, arrived))
        while intervals and intervals[0][0] < now - self.window:
            intervals.popleft()

    def likely_rate(self, queue: str) -> float | None:
        """The rate a warm target is sized from, in tasks per second: the arrivals counted less one standard
        deviation of a Poisson count (their square root), over the time they are counted in. A pool that sees a few tasks an hour, and by
        chance five in half an hour, keeps no worker waiting for a sixth (at 3 tasks an hour a pool, the plain rate
        kept a warm worker in one pool of five, nearly all of them idling out); a steady stream of n arrivals in
        the window loses 1/sqrt(n) of its rate (a seventh at 50)."""
        counted = self.counted(queue)
        if counted is None:
            return None
        arrivals, seconds = counted
        return max(0.0, arrivals - math.sqrt(arrivals)) / seconds

    def counted(self, queue: str) -> tuple[int, float] | None:
        """(arrivals in the window, the seconds they are counted over), or None before two readings in a row.
        Until half the window is covered, over half the window: a few arrivals in the first cycles after a start
        make no burst of warm workers."""
        intervals = self._intervals.get(queue)
        covered = sum(seconds for _, seconds, _ in intervals) if intervals else 0.0
        if covered <= 0:
            return None
        return sum(n for _, _, n in intervals), max(covered, self.window / 2)


def demand_claim_seconds(ledger: Ledger, since: float) -> dict[str, list[float]]:
    """Per pool, launch-to-claim times of the *demand* launches submitted since ``since``, oldest first. A warm
    launch's time to claim includes its wait for a task: learning from it would feed the warm target back into
    itself."""
    rows = ledger.query(
        "SELECT pool, claimed_at - COALESCE(sent_at, submitted_at) FROM launches WHERE submitted_at >= ? "
        "AND claimed_at IS NOT NULL "
        "AND kind = ? ORDER BY submitted_at", (since, DEMAND),
    )
    out: dict[str, list[float]] = {}
    for pool, seconds in rows:
        out.setdefault(pool, []).append(seconds)
    return out


def warm_target(pool: Pool, rate: float | None, claim_seconds: float, safety: float,
                start_seconds: float = WORKER_START_SECONDS) -> int:
    """How many workers the pool keeps waiting beyond its pending tasks: for ``auto``, the rule of the module's
    docstring, ``min(round(k x r x L), round(r x L) + floor(r x (T - s)))`` with ``start_seconds`` as ``s``."""
    if pool.warm == "auto":
        wanted = auto_target(rate or 0.0, claim_seconds, safety, idle_timeout(pool), start_seconds)
    else:
        wanted = int(pool.warm)
    if pool.warm_max is not None:
        wanted = min(wanted, pool.warm_max)
    return max(0, wanted)


def auto_target(rate: float, claim_seconds: float, safety: float, timeout: float, start_seconds: float) -> int:
    """``warm = "auto"``'s target (see the module's docstring): the expected demand over one launch-to-claim time,
    plus a margin for bursts that never exceeds the waiting workers arrivals can use before they idle out."""
    if rate <= 0:
        return 0
    expected = expected_demand(rate, claim_seconds)
    usable = math.floor(rate * max(0.0, timeout - start_seconds) + 1e-9)
    return max(0, min(_nearest(rate * claim_seconds * safety), expected + usable))


def expected_demand(rate: float | None, claim_seconds: float) -> int:
    """``round(r x L)``: the tasks expected within one launch-to-claim time, the part of an ``auto`` target the
    planner serves before any pool's margin."""
    return _nearest(rate * claim_seconds) if rate else 0


def _nearest(x: float) -> int:
    """Rounded to the nearest, halves up: a pool expecting under half a task keeps none."""
    return math.floor(x + 0.5 + 1e-9)
