"""What phone health reads of the ``launches`` table: failed submissions per phone and per pool, and phones
whose jobs keep failing (each bounded by time: a cheap read however long the ledger).

Owns no table and keeps nothing: it reads through the store. May not write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ..model import Launch, LaunchState
from .dialects import Dialect
from .rows import COLUMNS, from_row
from .store import Store


class FailureReads:
    def __init__(self, store: Store, dialect: Dialect, select: Callable[[str, Iterable], list[Launch]]) -> None:
        self._store, self.dialect, self._select = store, dialect, select

    def recent_failures(self, limit: int, since: float) -> dict[str, list[Launch]]:
        """Per phone with a failed submission at or after ``since``: its last ``limit`` submissions that left the
        queue since then, newest first (bounded by time: a cheap read however long the ledger)."""
        state = self.dialect.noindex("state")
        with self._store.lock:
            rows = self._store.exec(
                f"""SELECT {COLUMNS} FROM (
                     SELECT *, ROW_NUMBER() OVER (PARTITION BY udid ORDER BY submitted_at DESC) AS n
                     FROM launches WHERE udid != '' AND {state} NOT IN (?, ?, ?) AND updated_at >= ?
                       AND udid IN (SELECT udid FROM launches WHERE {state} = ? AND updated_at >= ?)) AS recent
                   WHERE n <= ? ORDER BY udid, submitted_at DESC""",
                (LaunchState.QUEUED.value, LaunchState.SUBMITTING.value, LaunchState.CANCELLED.value, since,
                 LaunchState.FAILED.value, since, limit),
            ).fetchall()
        out: dict[str, list[Launch]] = {}
        for row in rows:
            out.setdefault(row[2], []).append(from_row(row))
        return out

    def last_failures(self, since: float) -> dict[str, Launch]:
        """Per pool, its last failed submission at or after ``since``."""
        failed = self._select(
            f"id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY pool ORDER BY updated_at DESC) AS n "
            f"FROM launches{self.dialect.indexed_by('launches_updated')} "
            f"WHERE {self.dialect.noindex('state')} = ? AND updated_at >= ?) AS last WHERE n = 1)",
            (LaunchState.FAILED.value, since),
        )
        return {launch.pool: launch for launch in failed}

    def failing_jobs(self, outcomes: Sequence[str], since: float, at_least: int) -> dict[str, tuple[int, float]]:
        """Phones whose last ``at_least`` or more jobs ended with one of ``outcomes``, all since ``since``.

        A run of failures is cut by any other ended job and by any hold or release of the phone: once a phone
        has been held back (or released by hand) for its failures, only new ones count.
        Returns udid -> (failures in the run, when the last one was seen).
        """
        if not outcomes:
            return {}
        marks = ",".join("?" * len(outcomes))
        ended = LaunchState.ENDED.value
        d = self.dialect
        # never the index on state (most launches have ended): by time, and by phone and time in the
        # subquery (an ending before ``since`` cuts no run of endings after it)
        with self._store.lock:
            rows = self._store.exec(
                f"""SELECT l.udid, COUNT(*), MAX(l.updated_at) FROM launches l{d.indexed_by('launches_updated')}
                    WHERE {d.noindex('l.state')} = ? AND l.udid != '' AND l.updated_at >= ? AND l.outcome IN ({marks})
                      AND l.updated_at > COALESCE((SELECT MAX(o.updated_at) FROM launches o
                            WHERE o.udid = l.udid AND o.updated_at >= ? AND {d.noindex('o.state')} = ?
                              AND o.outcome NOT IN ({marks})), 0)
                      AND l.updated_at > COALESCE((SELECT MAX(h.since) FROM holds h WHERE h.udid = l.udid), 0)
                    GROUP BY l.udid HAVING COUNT(*) >= ?""",
                (ended, since, *outcomes, since, ended, *outcomes, at_least),
            ).fetchall()
        return {udid: (n, last) for udid, n, last in rows}
