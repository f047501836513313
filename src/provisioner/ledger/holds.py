"""Phones held back: by hand (``manual``), for failing jobs (``jobs``), and the operator's releases.

Owns the ``holds`` table. May not touch: the launches (phone health reads them through the ledger).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .store import Store


@dataclass(frozen=True)
class Hold:
    """A phone held back by hand (``manual``) or for failing jobs (``jobs``), or released by hand (``release``)."""

    udid: str
    since: float
    until: float
    source: str
    reason: str = ""
    released_at: float | None = None
    id: int | None = None  # its row (None: not read back from the ledger)


class HoldBook:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock, self._exec, self.transaction = store.lock, store.exec, store.transaction

    def latest(self) -> int:
        """The id of the newest hold or release (0: none): changes whenever one is recorded."""
        return self._exec("SELECT MAX(id) FROM holds").fetchone()[0] or 0

    def hold(self, udid: str, since: float, until: float, source: str, reason: str = "", keep: bool = False) -> Hold:
        """Record a hold, through the store's write path (fenced by the leadership epoch, if any). ``keep``: refused,
        it stays pending and is written with the next write that succeeds (see ``Store.write``)."""
        self._store.write("INSERT INTO holds (udid, since, until, source, reason) VALUES (?,?,?,?,?)",
                          (udid, since, until, source, reason), keep)
        return Hold(udid, since, until, source, reason)

    def release(self, udid: str, now: float, reason: str = "") -> int:
        """End every hold of ``udid`` now and record the release: failures before it no longer count.

        Returns how many holds were still active."""
        with self.transaction() as db:
            ended = db.execute(
                "UPDATE holds SET released_at = ? "
                "WHERE udid = ? AND until > ? AND released_at IS NULL AND source != 'release'",
                (now, udid, now),
            ).rowcount
            db.execute("INSERT INTO holds (udid, since, until, source, reason) VALUES (?,?,?,'release',?)",
                       (udid, now, now, reason))
            return ended

    def holds(self, now: float) -> list[Hold]:
        """The holds in force at ``now``."""
        return self._holds("until > ? AND released_at IS NULL AND source != 'release'", (now,))

    def hold_history(self, since: float) -> list[Hold]:
        """Every hold and release that was in force, or made, at or after ``since``."""
        return self._holds("until >= ? OR since >= ?", (since, since))

    def releases(self) -> dict[str, float]:
        """udid -> when an operator last released it."""
        with self._lock:
            return dict(self._exec("SELECT udid, MAX(since) FROM holds WHERE source = 'release' GROUP BY udid").fetchall())

    def _holds(self, where: str, args: Iterable) -> list[Hold]:
        with self._lock:
            rows = self._exec(
                f"SELECT udid, since, until, source, reason, released_at, id FROM holds WHERE {where} ORDER BY since",
                tuple(args),
            ).fetchall()
        return [Hold(*row) for row in rows]
