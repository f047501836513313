"""The launch ledger: every launch, in an embedded SQLite database under the state directory.

A launch is written (``queued``) before it is handed to the launcher, marked ``submitting`` right before the
launcher is called, and updated with the outcome. On start, launches that were queued but never submitted are
cancelled, and everything submitted and still in flight is loaded back, so a restart never books a phone twice.
One connection, used under a lock: the loop and the submission threads share it.

What every cycle needs, the launches in flight and the last use of each phone, is kept in memory and written
through, so a cycle reads nothing from disk however long the ledger grows. The writes of one cycle's
reconciliation go to disk in one transaction (``batch``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
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
CREATE INDEX IF NOT EXISTS launches_udid_updated ON launches(udid, updated_at);
CREATE INDEX IF NOT EXISTS launches_updated ON launches(updated_at);
CREATE INDEX IF NOT EXISTS launches_submitted ON launches(submitted_at);
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    udid TEXT NOT NULL,
    since REAL NOT NULL,
    until REAL NOT NULL,
    source TEXT NOT NULL,  -- manual | jobs (held for failing jobs) | release (an operator's release, a marker)
    reason TEXT NOT NULL DEFAULT '',
    released_at REAL
);
CREATE INDEX IF NOT EXISTS holds_udid ON holds(udid, since);
CREATE INDEX IF NOT EXISTS holds_until ON holds(until);
CREATE INDEX IF NOT EXISTS holds_source ON holds(source, udid, since);
-- Launches older than the retention horizon, folded per day, pool, phone and ending (see history.prune)
CREATE TABLE IF NOT EXISTS launch_days (
    day TEXT NOT NULL,  -- YYYY-MM-DD (UTC) of submission
    pool TEXT NOT NULL,
    udid TEXT NOT NULL,
    state TEXT NOT NULL,  -- ended | failed
    outcome TEXT NOT NULL,
    ran INTEGER NOT NULL,  -- 1: the job was seen running
    n INTEGER NOT NULL,
    PRIMARY KEY (day, pool, udid, state, outcome, ran)
);
"""


@dataclass(frozen=True)
class Hold:
    """A phone held back by hand (``manual``) or for failing jobs (``jobs``), or released by hand (``release``)."""

    udid: str
    since: float
    until: float
    source: str
    reason: str = ""
    released_at: float | None = None
IN_FLIGHT = tuple(s.value for s in LaunchState if s.in_flight)
# (name, type) of the columns added after the first schema, in the order they were added
ADDED_COLUMNS = (
    ("ran_at", "REAL"),  # when the job was first seen running
    ("claimed_at", "REAL"),  # when its worker was seen to have claimed a task
    ("claim_baseline", "TEXT"),  # the worker's latest task when the launch was planned (NULL: not known)
    ("submit_seconds", "REAL"),  # how long the launcher took to submit it
    ("kind", "TEXT NOT NULL DEFAULT 'demand'"),  # demand: for a pending task; warm: started ahead of demand
)
UNIQUE_JOB_ID = "CREATE UNIQUE INDEX IF NOT EXISTS launches_job_id ON launches(job_id) WHERE job_id != ''"
# Covering indexes for report's counts and medians (a month of launches read from the index alone, in order)
REPORT_INDEXES = (
    "CREATE INDEX IF NOT EXISTS launches_endings ON launches(pool, udid, state, outcome, ran_at, submitted_at)",
    "CREATE INDEX IF NOT EXISTS launches_times ON launches(pool, submitted_at, ran_at, claimed_at)",
)
COLUMNS = "id, pool, udid, state, submitted_at, updated_at, job_id, outcome, detail, claimed_at, claim_baseline, ran_at, kind"


class Ledger:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        """Open (and create) the ledger; ``readonly`` opens an existing one for reading only (status, report)."""
        self.path = path
        self._lock = threading.RLock()
        self._local = threading.local()  # .batch: this thread's writes waiting for the end of its batch
        self._flight: dict[str, Launch] | None = None  # the launches in flight, written through (None: read)
        self._last_used: dict[str, float] | None = None
        if readonly:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a launch written is a launch kept, even on power loss
        self._db.executescript(SCHEMA)
        os.chmod(path, 0o600)
        self._migrate()
        self._flight = {launch.id: launch for launch in self._in_flight_on_disk()}
        with self._lock:
            self._last_used = dict(self._db.execute(
                "SELECT udid, MAX(submitted_at) FROM launches WHERE udid != '' GROUP BY udid"))

    def _migrate(self) -> None:
        """Columns and indexes added since the first version, added in place to an existing ledger."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(launches)")}
        for name, kind in ADDED_COLUMNS:
            if name not in columns:
                self._db.execute(f"ALTER TABLE launches ADD COLUMN {name} {kind}")
        for index in REPORT_INDEXES:
            self._db.execute(index)
        try:
            self._db.execute(UNIQUE_JOB_ID)
        except sqlite3.IntegrityError:
            # A ledger written before job ids were unique may hold two launches sharing one (a wrong adoption):
            # the job stays with the launch that recorded it first; the other loses the id.
            self._db.execute(
                "UPDATE launches SET job_id = '', detail = 'job id shared with an earlier launch: removed' "
                "WHERE job_id != '' AND rowid NOT IN (SELECT MIN(rowid) FROM launches WHERE job_id != '' GROUP BY job_id)"
            )
            self._db.execute(UNIQUE_JOB_ID)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes --------------------------------------------------------------------------------------
    def add(self, pool: str, udid: str, now: float, claim_baseline: str | None = None, kind: str = "demand") -> Launch:
        launch = Launch(uuid.uuid4().hex, pool, udid, LaunchState.QUEUED, now, updated_at=now,
                        claim_baseline=claim_baseline, kind=kind)
        with self._lock:
            self._write(
                "INSERT INTO launches (id, pool, udid, state, submitted_at, updated_at, claim_baseline, kind) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (launch.id, pool, udid, launch.state.value, now, now, claim_baseline, kind),
            )
            if self._flight is not None:
                self._flight[launch.id] = launch
                self._used(udid, now)
        return launch

    def mark(self, launch_id: str, **fields: float | str | None) -> None:
        """Record facts that do not move the launch's state: ``claimed_at``, ``claim_baseline``, ``submit_seconds``."""
        assert fields and set(fields) <= {"claimed_at", "claim_baseline", "submit_seconds"}, fields
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._write(f"UPDATE launches SET {sets} WHERE id = ?", (*fields.values(), launch_id))
            cached = self._flight.get(launch_id) if self._flight is not None else None
            if cached is not None:
                self._flight[launch_id] = replace(cached, **{k: v for k, v in fields.items() if k != "submit_seconds"})

    def known_job_ids(self, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` some launch of the ledger already holds."""
        wanted = [j for j in job_ids if j]
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        with self._lock:
            return {r[0] for r in self._db.execute(f"SELECT job_id FROM launches WHERE job_id IN ({marks}) AND job_id != ''", wanted)}

    def claim_seconds(self, since: float) -> dict[str, list[float]]:
        """Per pool, launch-to-claim times (seconds) of the launches submitted since ``since`` whose worker claimed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT pool, claimed_at - submitted_at FROM launches "
                "WHERE submitted_at >= ? AND claimed_at IS NOT NULL ORDER BY submitted_at",
                (since,),
            ).fetchall()
        out: dict[str, list[float]] = {}
        for pool, seconds in rows:
            out.setdefault(pool, []).append(seconds)
        return out

    def submit_seconds(self, since: float) -> list[float]:
        """How long each submission since ``since`` took, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT submit_seconds FROM launches WHERE submitted_at >= ? AND submit_seconds IS NOT NULL "
                "ORDER BY submitted_at", (since,),
            )
            return [r[0] for r in rows]

    def update(
        self, launch_id: str, state: LaunchState, now: float, only_from: LaunchState | None = None, **fields: str
    ) -> bool:
        """Move a launch to ``state`` (only if it is in ``only_from``, when given). True if it moved (inside a
        ``batch``: if it will move, as far as the launches in memory tell)."""
        allowed = {"job_id", "outcome", "detail", "udid"}
        assert set(fields) <= allowed, fields
        sets = ", ".join(f"{k} = ?" for k in fields)
        ran = now if state is LaunchState.RUNNING else None
        guard, args = ("", ()) if only_from is None else (" AND state = ?", (only_from.value,))
        with self._lock:
            moved = self._write(
                f"UPDATE launches SET state = ?, updated_at = ?, ran_at = COALESCE(ran_at, ?)"
                f"{', ' + sets if sets else ''} WHERE id = ?{guard}",
                (state.value, now, ran, *fields.values(), launch_id, *args),
            )
            if self._flight is not None:
                cached = self._flight.get(launch_id)
                if cached is not None and (only_from is None or cached.state is only_from):
                    moved = True if moved is None else moved
                    if moved:
                        ran_at = cached.ran_at if cached.ran_at is not None or state is not LaunchState.RUNNING else now
                        self._moved(replace(cached, state=state, updated_at=now, ran_at=ran_at, **fields))
            return bool(moved)

    def _moved(self, launch: Launch) -> None:
        assert self._flight is not None
        if launch.state.in_flight:
            self._flight[launch.id] = launch
        else:
            self._flight.pop(launch.id, None)
        self._used(launch.udid, launch.submitted_at)

    def _used(self, udid: str, at: float) -> None:
        if udid and self._last_used is not None and at > self._last_used.get(udid, float("-inf")):
            self._last_used[udid] = at

    def _write(self, sql: str, args: Sequence) -> bool | None:
        """Run one write now, or keep it for the end of this thread's ``batch``. True if it changed a row."""
        batch = getattr(self._local, "batch", None)
        if batch is not None:
            batch.append((sql, tuple(args)))
            return None
        return self._db.execute(sql, tuple(args)).rowcount > 0

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """This thread's writes inside the block reach the disk together, in one transaction, at its end (one
        fsync, not one per write). Other threads' writes go on as usual. Reads see the launches in memory at once.
        Should the transaction fail, each write is tried again on its own, and the first error raised."""
        self._local.batch = writes = []
        try:
            yield
        finally:
            self._local.batch = None
            if writes:
                self._flush(writes)

    def _flush(self, writes: list[tuple[str, tuple]]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for sql, args in writes:
                    self._db.execute(sql, args)
                self._db.execute("COMMIT")
                return
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            errors = []
            for sql, args in writes:
                try:
                    self._db.execute(sql, args)
                except sqlite3.Error as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]

    def recover(self, now: float) -> int:
        """After a restart: launches queued but never handed to the launcher are cancelled."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE launches SET state = ?, updated_at = ?, detail = 'never submitted (restart)' WHERE state = ?",
                (LaunchState.CANCELLED.value, now, LaunchState.QUEUED.value),
            )
            if self._flight is not None:
                self._flight = {k: v for k, v in self._flight.items() if v.state is not LaunchState.QUEUED}
            return cur.rowcount

    # -- reads ---------------------------------------------------------------------------------------
    def in_flight(self) -> list[Launch]:
        """The launches in flight, oldest first (from memory, but for a read-only ledger)."""
        with self._lock:
            if self._flight is not None:
                return sorted(self._flight.values(), key=lambda la: la.submitted_at)
        return self._in_flight_on_disk()

    def _in_flight_on_disk(self) -> list[Launch]:
        marks = ",".join("?" * len(IN_FLIGHT))
        return self._select(f"state IN ({marks})", IN_FLIGHT)

    def get(self, launch_id: str) -> Launch | None:
        rows = self._select("id = ?", (launch_id,))
        return rows[0] if rows else None

    def since(self, t: float) -> list[Launch]:
        return self._select("submitted_at >= ?", (t,))

    def last_used(self) -> dict[str, float]:
        """Phone -> when it last got a launch (from memory, but for a read-only ledger)."""
        with self._lock:
            if self._last_used is not None:
                return dict(self._last_used)
            rows = self._db.execute("SELECT udid, MAX(submitted_at) FROM launches WHERE udid != '' GROUP BY udid")
            return dict(rows.fetchall())

    def recent_failures(self, limit: int, since: float) -> dict[str, list[Launch]]:
        """Per phone with a failed submission at or after ``since``: its last ``limit`` submissions that left the
        queue since then, newest first (bounded by time: a cheap read however long the ledger)."""
        with self._lock:
            rows = self._db.execute(
                f"""SELECT {COLUMNS} FROM (
                     SELECT *, ROW_NUMBER() OVER (PARTITION BY udid ORDER BY submitted_at DESC) AS n
                     FROM launches WHERE udid != '' AND +state NOT IN (?, ?, ?) AND updated_at >= ?
                       AND udid IN (SELECT udid FROM launches WHERE +state = ? AND updated_at >= ?))
                   WHERE n <= ? ORDER BY udid, submitted_at DESC""",
                (LaunchState.QUEUED.value, LaunchState.SUBMITTING.value, LaunchState.CANCELLED.value, since,
                 LaunchState.FAILED.value, since, limit),
            ).fetchall()
        out: dict[str, list[Launch]] = {}
        for row in rows:
            out.setdefault(row[2], []).append(_launch(row))
        return out

    def last_failures(self, since: float) -> dict[str, Launch]:
        """Per pool, its last failed submission at or after ``since``."""
        failed = self._select(
            "id IN (SELECT id FROM (SELECT id, MAX(updated_at) FROM launches "
            "WHERE +state = ? AND updated_at >= ? GROUP BY pool))",
            (LaunchState.FAILED.value, since),
        )
        return {launch.pool: launch for launch in failed}

    def query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        """Rows of a read (for the history module: reports and retention)."""
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, the ledger locked for its length (keep it short): yields the connection."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

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
        # "+state": never the index on state (most launches have ended): by time, and by phone and time in the
        # subquery (an ending before ``since`` cuts no run of endings after it)
        with self._lock:
            rows = self._db.execute(
                f"""SELECT l.udid, COUNT(*), MAX(l.updated_at) FROM launches l INDEXED BY launches_updated
                    WHERE +l.state = ? AND l.udid != '' AND l.updated_at >= ? AND l.outcome IN ({marks})
                      AND l.updated_at > COALESCE((SELECT MAX(o.updated_at) FROM launches o
                            WHERE o.udid = l.udid AND o.updated_at >= ? AND +o.state = ?
                              AND o.outcome NOT IN ({marks})), 0)
                      AND l.updated_at > COALESCE((SELECT MAX(h.since) FROM holds h WHERE h.udid = l.udid), 0)
                    GROUP BY l.udid HAVING COUNT(*) >= ?""",
                (ended, since, *outcomes, since, ended, *outcomes, at_least),
            ).fetchall()
        return {udid: (n, last) for udid, n, last in rows}

    # -- holds ---------------------------------------------------------------------------------------
    def hold(self, udid: str, since: float, until: float, source: str, reason: str = "") -> Hold:
        with self._lock:
            self._db.execute(
                "INSERT INTO holds (udid, since, until, source, reason) VALUES (?,?,?,?,?)",
                (udid, since, until, source, reason),
            )
        return Hold(udid, since, until, source, reason)

    def release(self, udid: str, now: float, reason: str = "") -> int:
        """End every hold of ``udid`` now and record the release: failures before it no longer count.

        Returns how many holds were still active."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE holds SET released_at = ? "
                "WHERE udid = ? AND until > ? AND released_at IS NULL AND source != 'release'",
                (now, udid, now),
            )
            self._db.execute(
                "INSERT INTO holds (udid, since, until, source, reason) VALUES (?,?,?,'release',?)",
                (udid, now, now, reason),
            )
            return cur.rowcount

    def holds(self, now: float) -> list[Hold]:
        """The holds in force at ``now``."""
        return self._holds("until > ? AND released_at IS NULL AND source != 'release'", (now,))

    def hold_history(self, since: float) -> list[Hold]:
        """Every hold and release that was in force, or made, at or after ``since``."""
        return self._holds("until >= ? OR since >= ?", (since, since))

    def releases(self) -> dict[str, float]:
        """udid -> when an operator last released it."""
        with self._lock:
            return dict(self._db.execute("SELECT udid, MAX(since) FROM holds WHERE source = 'release' GROUP BY udid"))

    def _holds(self, where: str, args: Iterable) -> list[Hold]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT udid, since, until, source, reason, released_at FROM holds WHERE {where} ORDER BY since",
                tuple(args),
            ).fetchall()
        return [Hold(*row) for row in rows]

    def _select(self, where: str, args: Iterable) -> list[Launch]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM launches WHERE {where} ORDER BY submitted_at",
                tuple(args),
            ).fetchall()
        return [_launch(r) for r in rows]


def _launch(row) -> Launch:
    id_, pool, udid, state, submitted_at, updated_at, job_id, outcome, detail, claimed_at, baseline, ran_at, kind = row
    return Launch(
        id=id_, pool=pool, udid=udid, state=LaunchState(state), submitted_at=submitted_at,
        job_id=job_id, updated_at=updated_at, outcome=outcome, detail=detail, claimed_at=claimed_at,
        claim_baseline=baseline, ran_at=ran_at, kind=kind,
    )
