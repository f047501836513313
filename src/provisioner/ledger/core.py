"""The launch ledger: every launch, in SQLite (one host) or PostgreSQL (several hosts, one active).

A launch is written (``queued``) before it is handed to the launcher, marked ``submitting`` right before the
launcher is called, and updated with the outcome. On start (on taking over, with PostgreSQL), launches that were
queued but never submitted are cancelled, and everything submitted and still in flight is loaded back, so a
restart or a failover never books a phone twice. One connection, used under a lock: the loop and the submission
threads share it.

What every cycle needs, the launches in flight and the last use of each phone, is kept in memory and written
through, so a cycle reads nothing from disk however long the ledger grows. The writes of one cycle's
reconciliation go to the database in one transaction (``batch``). A ledger that follows (a standby daemon's, or a
read-only one) keeps nothing in memory and reads the database.

Fencing and the write path live in ``store`` (``Fenced``); the holds in ``holds``; the reads of failed
submissions and jobs that phone health makes in ``failures``. This module owns the
``launches`` table: each launch's writes, the launches in flight and each phone's last use kept in memory, and
the reads the loop, ``status`` and ``report`` make of them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from ..model import Launch, LaunchState
from .dialects import Conn, Dialect, SQLite
from .failures import FailureReads
from .holds import Hold, HoldBook
from .migrations import migrate
from .rows import COLUMNS, FIELDS, IN_FLIGHT, READ, from_row
from .store import Fenced, Store

__all__ = ["COLUMNS", "Fenced", "Hold", "IN_FLIGHT", "Ledger", "OldSchema"]


class OldSchema(Exception):
    """A ledger opened for reading that this version cannot read until it is migrated."""


class Ledger:
    def __init__(self, where: Path | Dialect, readonly: bool = False, follow: bool = False) -> None:
        """Open (and create, and migrate) the ledger at ``where``: an SQLite file's path, or a dialect
        (``PostgreSQL(url)``). ``readonly`` opens an existing one for reading only (status, report); ``follow``
        keeps nothing in memory until ``take_over`` (a standby daemon)."""
        self.dialect = where if isinstance(where, Dialect) else SQLite(Path(where))
        self.path = getattr(self.dialect, "path", None)
        self.readonly = readonly
        self.IntegrityError = self.dialect.IntegrityError
        self._store = store = Store(self.dialect, readonly)
        self._lock, self._exec, self._write = store.lock, store.exec, store.write
        self.batch, self.transaction, self.query, self.close = store.batch, store.transaction, store.query, store.close
        self.catch_up = store.catch_up
        self._holds = holds = HoldBook(store)
        self.hold, self.release, self.holds = holds.hold, holds.release, holds.holds
        self.hold_history, self.releases = holds.hold_history, holds.releases
        failures = FailureReads(store, self.dialect, self._select)
        self.recent_failures, self.last_failures = failures.recent_failures, failures.last_failures
        self.failing_jobs = failures.failing_jobs
        self._flight: dict[str, Launch] | None = None  # the launches in flight, written through (None: read)
        self._last_used: dict[str, float] | None = None
        self._newest_use = float("-inf")  # the latest of ``_last_used``: a launch added later is not used before it
        self.endings = 0  # launches this process moved to ended or failed (see health_version)
        if readonly:
            missing = [c for c in READ if c not in self.dialect.columns(self.conn, "launches")]
            if missing:  # a daemon not restarted since an upgrade: its ledger is not migrated yet
                store.close()
                raise OldSchema(f"its schema is older than this provisioner's (no {', '.join(missing)}): restart "
                                f"the daemon, or run `provisioner ledger migrate`")
            return
        migrate(Conn(store.db, self.dialect), self.dialect, time.time())
        if not follow:
            self.load()

    @property
    def conn(self) -> Conn:
        """The connection (made again if it broke: a database that went away and came back)."""
        return self._store.conn

    @property
    def _db(self) -> object:
        """The driver's connection now (tests trace its statements)."""
        return self._store.db

    def load(self) -> None:
        """Read the launches in flight and each phone's last use into memory (then written through)."""
        with self._lock:
            self._flight = None
            flight = {launch.id: launch for launch in self._in_flight_on_disk()}
            last = dict(self._exec("SELECT udid, MAX(submitted_at) FROM launches WHERE udid != '' GROUP BY udid").fetchall())
            self._flight, self._last_used = flight, last
            self._newest_use = max(last.values(), default=float("-inf"))

    @property
    def write_error(self) -> str | None:
        """Why the database refuses writes that the launches in memory already hold (None: every one written).
        They are tried again before any other write, and at the end of every ``batch``."""
        return self._store.error

    def take_over(self, tag: str, epoch: int) -> None:
        """Become the writer of epoch ``epoch`` of ``tag``: every launch write is fenced by it from now on."""
        with self._lock:
            self._store.fence = (tag, epoch)
            self._store.forget_pending()  # an old epoch's writes: memory is loaded again from the database
            self.load()

    def step_down(self) -> None:
        """Keep nothing in memory (another daemon writes); launch writes stay fenced by the old epoch."""
        with self._lock:
            self._store.forget_pending()
            self._flight = self._last_used = None

    def busy(self, exc: BaseException) -> bool:
        return self.dialect.busy(exc)

    def describe(self) -> str:
        return self.dialect.describe()

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
                if udid:  # its latest launch: never older than an earlier use, whatever the wall clock did
                    self._last_used[udid] = self._newest_use = max(now, self._newest_use)
        return launch

    def mark(self, launch_id: str, keep: bool = False, **values: float | str | None) -> None:
        """Record facts that do not move the launch's state: ``claimed_at``, ``claim_baseline``, ``submit_seconds``,
        ``sent_at``. ``keep``: refused, the write stays pending (see ``write_error``) and memory holds it."""
        assert values and set(values) <= {"claimed_at", "claim_baseline", "submit_seconds", "sent_at"}, values
        sets = ", ".join(f"{k} = ?" for k in values)
        with self._lock:
            self._write(f"UPDATE launches SET {sets} WHERE id = ?", (*values.values(), launch_id), keep)
            cached = self._flight.get(launch_id) if self._flight is not None else None
            if cached is not None:
                self._flight[launch_id] = replace(cached, **{k: v for k, v in values.items() if k in FIELDS})

    def known_job_ids(self, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` some launch of the ledger already holds."""
        wanted = [j for j in job_ids if j]
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._exec(f"SELECT job_id FROM launches WHERE job_id IN ({marks}) AND job_id != ''", wanted)
            return {r[0] for r in rows.fetchall()}

    def submit_seconds(self, since: float) -> list[float]:
        """How long each submission since ``since`` took, oldest first."""
        with self._lock:
            rows = self._exec(
                "SELECT submit_seconds FROM launches WHERE submitted_at >= ? AND submit_seconds IS NOT NULL "
                "ORDER BY submitted_at", (since,),
            ).fetchall()
            return [r[0] for r in rows]

    def update(
        self, launch_id: str, state: LaunchState, now: float, only_from: LaunchState | None = None,
        keep: bool = False, **values: str | float,
    ) -> bool:
        """Move a launch to ``state`` (only if it is in ``only_from``, when given), setting ``values`` with it.
        True if it moved (inside a ``batch``, or kept pending: if it will move, as far as the launches in memory
        tell). ``keep``: refused, the write stays pending (see ``write_error``) and memory moves the launch."""
        allowed = {"job_id", "outcome", "detail", "udid", "sent_at", "submit_seconds"}
        assert set(values) <= allowed, values
        sets = ", ".join(f"{k} = ?" for k in values)
        ran = now if state is LaunchState.RUNNING else None
        guard, args = ("", ()) if only_from is None else (" AND state = ?", (only_from.value,))
        with self._lock:
            if state in (LaunchState.FAILED, LaunchState.ENDED):
                self.endings += 1
            changed = self._write(
                f"UPDATE launches SET state = ?, updated_at = ?, ran_at = COALESCE(ran_at, ?)"
                f"{', ' + sets if sets else ''} WHERE id = ?{guard}",
                (state.value, now, ran, *values.values(), launch_id, *args), keep,
            )
            moved = None if changed is None else changed > 0
            if self._flight is not None:
                cached = self._flight.get(launch_id)
                if cached is not None and (only_from is None or cached.state is only_from):
                    moved = True if moved is None else moved
                    if moved:
                        ran_at = cached.ran_at if cached.ran_at is not None or state is not LaunchState.RUNNING else now
                        kept = {k: v for k, v in values.items() if k in FIELDS}
                        self._moved(replace(cached, state=state, updated_at=now, ran_at=ran_at, **kept))
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

    def recover(self, now: float) -> int:
        """After a restart or a takeover: launches queued but never handed to the launcher are cancelled."""
        with self._lock:
            cancelled = self._write(
                "UPDATE launches SET state = ?, updated_at = ?, detail = 'never submitted (restart)' WHERE state = ?",
                (LaunchState.CANCELLED.value, now, LaunchState.QUEUED.value),
            )
            if self._flight is not None:
                self._flight = {k: v for k, v in self._flight.items() if v.state is not LaunchState.QUEUED}
            return cancelled or 0

    # -- reads ---------------------------------------------------------------------------------------
    def in_flight(self) -> list[Launch]:
        """The launches in flight, oldest first (from memory, but for a read-only or following ledger): in the order
        they were added, so a step of the wall clock back misorders none made by this process (those loaded from
        disk come first, by their recorded ``submitted_at``)."""
        with self._lock:
            if self._flight is not None:
                return list(self._flight.values())
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
        """Phone -> when it last got a launch (from memory, but for a read-only or following ledger). In memory, a
        launch made after a step of the wall clock back counts as made no earlier than the newest use before it
        (the planner takes the least recently used phones first: a newer use never looks older)."""
        with self._lock:
            if self._last_used is not None:
                return dict(self._last_used)
            rows = self._exec("SELECT udid, MAX(submitted_at) FROM launches WHERE udid != '' GROUP BY udid")
            return dict(rows.fetchall())

    def leader(self, tag: str) -> tuple[int, str, float] | None:
        """The job tag's current leadership: (epoch, holder, since), or None if no daemon ever led it here."""
        with self._lock:
            row = self._exec("SELECT epoch, holder, since FROM leadership WHERE tag = ?", (tag,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    # -- phone health ------------------------------------------------------------------------------
    def health_version(self) -> tuple[int, int]:
        """Changes only when what phone health reads may have: a launch of this process ended or failed, or a
        hold or release was recorded (by any process)."""
        return self.endings, self._holds.latest()

    def _select(self, where: str, args: Iterable) -> list[Launch]:
        with self._lock:
            rows = self._exec(f"SELECT {COLUMNS} FROM launches WHERE {where} ORDER BY submitted_at", tuple(args)).fetchall()
        return [from_row(r) for r in rows]
