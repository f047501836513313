"""The launch ledger: every launch, in an embedded SQLite database under the state directory.

A launch is written (``queued``) before it is handed to the launcher, marked ``submitting`` right before the
launcher is called, and updated with the outcome. On start, launches that were queued but never submitted are
cancelled, and everything submitted and still in flight is loaded back, so a restart never books a phone twice.
One connection, used under a lock: the loop and the submission threads share it.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

from .model import Launch, LaunchState

SCHEMA = """
CREATE TABLE IF NOT EXISTS launches (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    udid TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    job_id TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS launches_state ON launches(state);
CREATE INDEX IF NOT EXISTS launches_udid ON launches(udid, submitted_at);
"""
IN_FLIGHT = tuple(s.value for s in LaunchState if s.in_flight)


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a launch written is a launch kept, even on power loss
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes --------------------------------------------------------------------------------------
    def add(self, pool: str, udid: str, now: float) -> Launch:
        launch = Launch(uuid.uuid4().hex, pool, udid, LaunchState.QUEUED, now, updated_at=now)
        with self._lock:
            self._db.execute(
                "INSERT INTO launches (id, pool, udid, state, submitted_at, updated_at) VALUES (?,?,?,?,?,?)",
                (launch.id, pool, udid, launch.state.value, now, now),
            )
        return launch

    def update(self, launch_id: str, state: LaunchState, now: float, **fields: str) -> None:
        allowed = {"job_id", "outcome", "detail", "udid"}
        assert set(fields) <= allowed, fields
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(
                f"UPDATE launches SET state = ?, updated_at = ?{', ' + sets if sets else ''} WHERE id = ?",
                (state.value, now, *fields.values(), launch_id),
            )

    def recover(self, now: float) -> int:
        """After a restart: launches queued but never handed to the launcher are cancelled."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE launches SET state = ?, updated_at = ?, detail = 'never submitted (restart)' WHERE state = ?",
                (LaunchState.CANCELLED.value, now, LaunchState.QUEUED.value),
            )
            return cur.rowcount

    # -- reads ---------------------------------------------------------------------------------------
    def in_flight(self) -> list[Launch]:
        marks = ",".join("?" * len(IN_FLIGHT))
        return self._select(f"state IN ({marks})", IN_FLIGHT)

    def get(self, launch_id: str) -> Launch | None:
        rows = self._select("id = ?", (launch_id,))
        return rows[0] if rows else None

    def since(self, t: float) -> list[Launch]:
        return self._select("submitted_at >= ?", (t,))

    def last_used(self) -> dict[str, float]:
        with self._lock:
            rows = self._db.execute("SELECT udid, MAX(submitted_at) FROM launches WHERE udid != '' GROUP BY udid")
            return dict(rows.fetchall())

    def recent_failures(self, limit: int) -> dict[str, list[Launch]]:
        """Per phone, its last ``limit`` submissions that left the queue, newest first."""
        with self._lock:
            rows = self._db.execute(
                """SELECT * FROM (
                     SELECT *, ROW_NUMBER() OVER (PARTITION BY udid ORDER BY submitted_at DESC) AS n
                     FROM launches WHERE udid != '' AND state NOT IN (?, ?, ?))
                   WHERE n <= ? ORDER BY udid, submitted_at DESC""",
                (LaunchState.QUEUED.value, LaunchState.SUBMITTING.value, LaunchState.CANCELLED.value, limit),
            ).fetchall()
        out: dict[str, list[Launch]] = {}
        for row in rows:
            out.setdefault(row[2], []).append(_launch(row[:9]))
        return out

    def _select(self, where: str, args: Iterable) -> list[Launch]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, pool, udid, state, submitted_at, updated_at, job_id, outcome, detail FROM launches "
                f"WHERE {where} ORDER BY submitted_at",
                tuple(args),
            ).fetchall()
        return [_launch(r) for r in rows]


def _launch(row) -> Launch:
    id_, pool, udid, state, submitted_at, updated_at, job_id, outcome, detail = row
    return Launch(
        id=id_, pool=pool, udid=udid, state=LaunchState(state), submitted_at=submitted_at,
        job_id=job_id, updated_at=updated_at, outcome=outcome, detail=detail,
    )
