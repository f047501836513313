"""The ledger's past: retention, and the aggregated reads ``report`` makes.

Retention: a launch that left flight more than ``retention_days`` ago is folded into ``launch_days`` (one row a
day, pool, phone and ending, with a count) and deleted, in small batches, each its own short transaction, so
that the daemon's writes never wait long. Holds that ended before the horizon go too. The horizon's default
(35 days) is longer than every window that reads single launches: the job look-back (2 h), phone health (3 h)
and ``report``'s default (7 days).

Report: counts come grouped from SQL (a month of launches is a million rows on a busy fleet: they are never
loaded one by one); only the launches still in flight, and the provider's jobs the ledger does not hold, are
looked at singly. Medians (per pool, to 5 s) come from histograms counted in SQL, over the days the ledger still
holds singly.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from .ledger import Ledger
from .model import Launch, LaunchState

DAY = 86400.0
BATCH = 1000  # launches folded per transaction
RESOLUTION = 5.0  # seconds: how finely report's medians are told
ENDINGS = (LaunchState.ENDED.value, LaunchState.FAILED.value)
GONE = (*ENDINGS, LaunchState.CANCELLED.value)


def day_of(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def prune(ledger: Ledger, now: float, retention_days: float, batches: int = 10) -> int:
    """Fold and delete up to ``batches`` x ``BATCH`` launches older than the horizon; returns how many went.

    Call it again until it returns less than a full run; each batch is one short transaction."""
    horizon = now - retention_days * DAY
    marks = ",".join("?" * len(GONE))
    gone = 0
    for _ in range(batches):
        with ledger.transaction() as db:
            rows = db.execute(
                f"SELECT id, pool, udid, state, outcome, submitted_at, ran_at FROM launches "
                f"WHERE submitted_at < ? AND state IN ({marks}) ORDER BY submitted_at LIMIT ?",
                (horizon, *GONE, BATCH),
            ).fetchall()
            folded: dict[tuple, int] = defaultdict(int)
            for _id, pool, udid, state, outcome, submitted_at, ran_at in rows:
                if state != LaunchState.CANCELLED.value:  # never submitted: not a launch, nothing to keep
                    folded[day_of(submitted_at), pool, udid, state, outcome, int(ran_at is not None)] += 1
            db.executemany(
                "INSERT INTO launch_days (day, pool, udid, state, outcome, ran, n) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (day, pool, udid, state, outcome, ran) DO UPDATE SET n = launch_days.n + excluded.n",
                [(*key, n) for key, n in folded.items()],
            )
            db.executemany("DELETE FROM launches WHERE id = ?", [(row[0],) for row in rows])
        gone += len(rows)
        if len(rows) < BATCH:
            with ledger.transaction() as db:  # holds over before the horizon (an operator's release included)
                db.execute("DELETE FROM holds WHERE until < ? AND since < ?", (horizon, horizon))
            break
    return gone


@dataclass(frozen=True)
class Ending:
    """How many launches of a pool on a phone ended one way. ``state`` is ``ended`` or ``failed`` (submission)."""

    pool: str
    udid: str
    state: str
    outcome: str
    ran: bool  # the job was seen running before it ended
    n: int


def endings(ledger: Ledger, since: float) -> list[Ending]:
    """Launches submitted since ``since`` that ended or failed, counted by pool, phone and ending; with the days
    already folded (whole days: a window that starts within a folded day counts all of it)."""
    marks = ",".join("?" * len(ENDINGS))
    rows = ledger.query(
        f"SELECT pool, udid, state, outcome, CASE WHEN ran_at IS NULL THEN 0 ELSE 1 END, COUNT(*) "
        f"FROM launches{ledger.dialect.indexed_by('launches_endings')} "
        f"WHERE submitted_at >= ? AND state IN ({marks}) GROUP BY 1, 2, 3, 4, 5",
        (since, *ENDINGS),
    )
    rows += ledger.query(
        "SELECT pool, udid, state, outcome, ran, SUM(n) FROM launch_days WHERE day >= ? GROUP BY 1, 2, 3, 4, 5",
        (day_of(since),),
    )
    return [Ending(pool, udid, state, outcome, bool(ran), n) for pool, udid, state, outcome, ran, n in rows]


def in_flight_since(ledger: Ledger, since: float) -> list[Launch]:
    return [launch for launch in ledger.in_flight() if launch.submitted_at >= since]


def medians(ledger: Ledger, since: float, column: str) -> dict[str, float]:
    """Per pool, the median of ``column`` - submitted_at (``ran_at``: to running, ``claimed_at``: to the worker's
    claim), to ``RESOLUTION`` seconds, over the launches the ledger still holds singly: from a histogram that
    SQL counts in one pass, never a sort of a month of launches."""
    assert column in ("ran_at", "claimed_at")
    rows = ledger.query(
        f"SELECT pool, {ledger.dialect.bucket(f'({column} - submitted_at) / ?')}, COUNT(*) "
        f"FROM launches{ledger.dialect.indexed_by('launches_times')} "
        f"WHERE submitted_at >= ? AND {column} IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        (RESOLUTION, since),
    )
    histograms: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pool, bucket, n in rows:
        histograms[pool].append((bucket, n))
    return {pool: _median(h) for pool, h in histograms.items()}


def _median(histogram: list[tuple[int, int]]) -> float:
    """The middle of a sorted histogram of ``RESOLUTION``-second buckets: the middle bucket's centre."""
    half, seen = sum(n for _, n in histogram) / 2, 0
    for bucket, n in histogram:
        seen += n
        if seen >= half:
            return (bucket + 0.5) * RESOLUTION
    return (histogram[-1][0] + 0.5) * RESOLUTION

