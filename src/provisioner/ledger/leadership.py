"""Several daemons on one PostgreSQL ledger: exactly one is active, the others stand by.

Leadership is a session-level advisory lock keyed by the job tag, held on a connection of its own (the lease),
plus a fencing epoch: the daemon that gets the lock increments the tag's epoch in ``leadership`` (and records
it in ``leadership_history``), and every launch it writes checks, in the same transaction, that the epoch is
still the current one (see ``Ledger.take_over``). A daemon that is killed loses its session at once (its socket
closes); one that is cut off or paused loses it when the server notices: TCP keepalives on both sides, and an
``idle_session_timeout`` of one cycle on the lease, which a thread of the daemon touches three times a cycle
whatever the cycle does (a paused or cut-off daemon stops touching it). A standby tries the lock every cycle, so
it takes over within two cycles of the active one's end.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

from ..logs import redact
from .dialects import PostgreSQL


@dataclass(frozen=True)
class Role:
    """This daemon's role now: active (with its epoch) or standby (with who is active, if known)."""

    active: bool
    epoch: int | None = None
    holder: str = ""  # the active daemon: host:pid
    since: float | None = None
    problem: str = ""  # why this daemon cannot lead now (the ledger unreachable)

    def describe(self, stamp: Any = None) -> str:
        when = "" if self.since is None else f" since {stamp(self.since) if stamp else f'{self.since:.0f}'}"
        if self.active:
            return f"active (epoch {self.epoch}{when})" if self.epoch is not None else "active"
        if self.problem:
            return f"standby ({self.problem})"
        return f"standby (active: {self.holder.replace(':', ' pid ', 1) if self.holder else 'none yet'}{when})"


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """The leadership of one job tag on a PostgreSQL ledger, for one daemon. ``check(now)`` once a cycle."""

    def __init__(self, dialect: PostgreSQL, tag: str, interval: float, holder: str | None = None) -> None:
        self.dialect, self.tag = dialect, tag
        self.key = f"provisioner:{tag}"
        self.holder = holder or holder_name()
        self.idle_ms = max(1000, int(interval * 1000))
        self.epoch: int | None = None
        self._db: Any = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._touch, args=(self.idle_ms / 3000,), name="lease", daemon=True)
        self._beat.start()

    def _touch(self, period: float) -> None:
        """Keep the lease's session from looking idle, between cycles and during long ones."""
        while not self._stop.wait(period):
            with self._lock:
                if self._db is not None and not self.dialect.broken(self._db):
                    try:
                        self._db.execute("SELECT 1")
                    except self.dialect.Error:
                        pass  # the next check sees it

    def _connection(self) -> Any:
        if self._db is None or self.dialect.broken(self._db):
            self._db = None
            db = self.dialect.connect(False, idle_session_timeout=f"{self.idle_ms}ms", tcp_keepalives_idle=5,
                                      tcp_keepalives_interval=2, tcp_keepalives_count=3)
            self._db = db
        return self._db

    def check(self, now: float) -> Role:
        """Still active, or now active (the lock taken, the epoch incremented), or standby."""
        with self._lock:
            return self._check(now)

    def _check(self, now: float) -> Role:
        if self.epoch is not None and (self._db is None or self.dialect.broken(self._db)):
            self._drop()  # the session that held the lock is gone, and the lock with it
        try:
            db = self._connection()
            if self.epoch is not None:
                row = db.execute("SELECT epoch, holder, since FROM leadership WHERE tag = %s", (self.tag,)).fetchone()
                if row is not None and row[0] == self.epoch:
                    return Role(True, self.epoch, row[1], row[2])
                self._drop()  # another daemon took over (we lost the session unnoticed): let go of the lock
                return self._standby(self._connection())
            if db.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.key,)).fetchone()[0]:
                return self._take(db, now)
            return self._standby(db)
        except self.dialect.Error as exc:
            self._drop()
            return Role(False, problem=f"ledger unreachable: {redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)}")

    def _take(self, db: Any, now: float) -> Role:
        with db.transaction():
            epoch = db.execute(
                "INSERT INTO leadership (tag, epoch, holder, since) VALUES (%s, 1, %s, %s) "
                "ON CONFLICT (tag) DO UPDATE SET epoch = leadership.epoch + 1, holder = excluded.holder, "
                "since = excluded.since RETURNING epoch", (self.tag, self.holder, now),
            ).fetchone()[0]
            db.execute("INSERT INTO leadership_history (tag, epoch, holder, since) VALUES (%s, %s, %s, %s)",
                       (self.tag, epoch, self.holder, now))
        self.epoch = epoch
        return Role(True, epoch, self.holder, now)

    def _standby(self, db: Any) -> Role:
        row = db.execute("SELECT holder, since FROM leadership WHERE tag = %s", (self.tag,)).fetchone()
        return Role(False, holder=row[0] if row else "", since=row[1] if row else None)

    def release(self) -> None:
        """Step down: the lock goes (with the session), the epoch stays for the next one to increment."""
        with self._lock:
            self._drop()

    def close(self) -> None:
        self._stop.set()
        self.release()

    def _drop(self) -> None:
        self.epoch = None
        db, self._db = self._db, None
        if db is not None:
            try:
                if not self.dialect.broken(db):  # let go now, not when the server sees the socket close
                    db.execute("SELECT pg_advisory_unlock_all()")
                db.close()
            except Exception:  # noqa: BLE001 - a connection already gone
                pass

