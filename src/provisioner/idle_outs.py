"""What warm workers cost, and the per-day figures ``report --plot`` draws, read from the ledger.

An *idle-out* (``warm.is_idle_out``) is a warm launch whose job ended normally (``warm.IDLE_OUT_OUTCOMES``)
without its worker ever claiming a task. The phone time a warm launch spent before serving a task runs from its
launch to its worker's claim, or to its end for an idle-out (its startup included: the phone was held for it).
These are grouped reads (``Ledger.query``), never a load of single launches.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .ledger import Ledger
from .model import LaunchState, Pool
from .warm import DEMAND, IDLE_OUT_OUTCOMES, WARM, WORKER_START_SECONDS, idle_timeout

RESOLUTION = 5.0  # seconds: how finely the daily launch-to-claim medians are told
_IDLE = (f"kind = '{WARM}' AND state = '{LaunchState.ENDED.value}' AND claimed_at IS NULL "
         f"AND outcome IN ({','.join(repr(o) for o in IDLE_OUT_OUTCOMES)})")


def idle_outs_ended_since(ledger: Ledger, since: float) -> dict[str, int]:
    """Per pool, idle-outs whose job was seen ending at or after ``since`` (``status``: the last hour)."""
    return dict(ledger.query(f"SELECT pool, COUNT(*) FROM launches WHERE updated_at >= ? AND {_IDLE} GROUP BY pool",
                             (since,)))


def idle_outs_by_phone(ledger: Ledger, since: float) -> list[tuple[str, str, str, int]]:
    """(pool, udid, outcome, n) of the idle-outs among the launches submitted since ``since``."""
    return ledger.query(f"SELECT pool, udid, outcome, COUNT(*) FROM launches{ledger.dialect.indexed_by('launches_warm')} "
                        f"WHERE submitted_at >= ? AND {_IDLE} GROUP BY 1, 2, 3", (since,))


def warm_minutes(ledger: Ledger, since: float) -> dict[str, float]:
    """Per pool, phone-minutes warm launches submitted since ``since`` spent before serving a task."""
    rows = ledger.query(
        f"SELECT pool, SUM(COALESCE(claimed_at, updated_at) - submitted_at) / 60.0 "
        f"FROM launches{ledger.dialect.indexed_by('launches_warm')} "
        f"WHERE submitted_at >= ? AND kind = '{WARM}' AND (claimed_at IS NOT NULL OR ({_IDLE})) GROUP BY pool",
        (since,),
    )
    return {pool: minutes or 0.0 for pool, minutes in rows}


def idle_out_lives(ledger: Ledger, since: float, samples: int = 50) -> dict[str, float]:
    """Per pool, the median seconds from launch to end (as the loop saw it end) of its latest ``samples``
    idle-outs submitted since ``since``."""
    rows = ledger.query(
        f"SELECT pool, updated_at - COALESCE(sent_at, submitted_at) FROM launches{ledger.dialect.indexed_by('launches_warm')} "
        f"WHERE submitted_at >= ? AND {_IDLE} ORDER BY submitted_at", (since,))
    lives: dict[str, list[float]] = defaultdict(list)
    for pool, seconds in rows:
        lives[pool].append(seconds)
    return {pool: statistics.median(v[-samples:]) for pool, v in lives.items()}


class StartLearned:
    """``s`` of ``warm = "auto"`` (see :mod:`.warm`): how much of a worker's start its idle timeout runs through,
    learned per pool from its idle-outs of the last day. An idle-out lives ``L + (T - s)`` from launch to the
    end of its wait, then ``post`` runs and the loop sees the end up to a cycle later; so ``s`` is at least
    ``L + T - life`` (less by ``post`` and that cycle, which are not known apart), never below
    ``WORKER_START_SECONDS`` nor above ``T``. With no idle-out yet: ``WORKER_START_SECONDS``. Read from the ledger
    at most every ``refresh`` seconds of the monotonic clock (``mono``; a step of the wall clock back neither
    freezes nor hurries it), the last day reached back from ``now`` (wall: the ledger's times)."""

    def __init__(self, ledger: Ledger | None, refresh: float = 600.0) -> None:
        self.ledger = ledger
        self.refresh = refresh
        self._read: tuple[float, dict[str, float]] | None = None

    def start_seconds(self, pool: Pool, claim_seconds: float, now: float, mono: float | None = None) -> float:
        mono = now if mono is None else mono
        if self._read is None or not 0 <= mono - self._read[0] < self.refresh:
            self._read = (mono, idle_out_lives(self.ledger, now - 86400.0) if self.ledger is not None else {})
        life = self._read[1].get(pool.name)
        if life is None:
            return WORKER_START_SECONDS
        timeout = idle_timeout(pool)
        return min(timeout, max(WORKER_START_SECONDS, claim_seconds + timeout - life))


@dataclass(frozen=True)
class Day:
    day: str  # YYYY-MM-DD (UTC) of submission
    launches: int
    failures: int  # failed submissions and jobs ending with a failure outcome
    idle_outs: int
    to_claim: float | None  # median seconds from launch to claim of the day's demand launches


def daily(ledger: Ledger, since: float, failing: Sequence[str]) -> list[Day]:
    """One row per day with launches since ``since`` (the days the ledger still holds singly), oldest first."""
    marks = ",".join("?" * len(failing)) or "''"
    rows = ledger.query(
        f"SELECT date(submitted_at, 'unixepoch'), COUNT(*), SUM(state = ? OR (state = ? AND outcome IN ({marks}))), "
        f"SUM({_IDLE}) FROM launches WHERE submitted_at >= ? AND state != ? GROUP BY 1 ORDER BY 1",
        (LaunchState.FAILED.value, LaunchState.ENDED.value, *failing, since, LaunchState.CANCELLED.value),
    )
    buckets = ledger.query(
        "SELECT date(submitted_at, 'unixepoch'), CAST((claimed_at - submitted_at) / ? AS INTEGER), COUNT(*) "
        "FROM launches WHERE submitted_at >= ? AND claimed_at IS NOT NULL AND kind = ? GROUP BY 1, 2 ORDER BY 1, 2",
        (RESOLUTION, since, DEMAND),
    )
    histograms: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for day, bucket, n in buckets:
        histograms[day].append((bucket, n))
    return [Day(day, n, failed or 0, idle or 0, _median(histograms.get(day, []))) for day, n, failed, idle in rows]


def _median(histogram: list[tuple[int, int]]) -> float | None:
    if not histogram:
        return None
    half, seen = sum(n for _, n in histogram) / 2, 0
    for bucket, n in histogram:
        seen += n
        if seen >= half:
            return (bucket + 0.5) * RESOLUTION
    return None
