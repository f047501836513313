"""Several daemons on one PostgreSQL ledger: exactly one is active, the others stand by.

Leadership is a session-level advisory lock keyed by the job tag, held on a connection of its own (the lease),
plus a fencing epoch: the daemon that gets the lock increments the tag's epoch in ``leadership`` (and records
it in ``leadership_history``), and every launch it writes checks, in the same transaction, that the epoch is
still the current one (see ``Ledger.take_over``). A daemon that is killed loses its session at once (its socket
closes); one that is cut off or paused loses it when the server notices: an ``idle_session_timeout`` of one lease
on the lease's session, which a thread of the daemon touches three times a lease whatever the cycle does, and
TCP keepalives (the server drops a silent peer after 5 + 3 x 2 s). A standby tries the lock every cycle, so it
takes over within two cycles of the active one's end.

The lease is one cycle, at least 1 s and at most 10 s (``LEASE_MAX``: below the keepalives' 11 s, so that only the
idle timeout can end a session sooner than its holder can tell). The server ends the session no sooner than a lease
after it last received a statement, so the daemon can prove it holds the lock until the time it sent its last
answered statement on that session, plus the lease (less 1% for the two hosts' clocks): ``Lease.held()``. A
launch is handed to the launcher only while ``held()`` (checked after its ``submitting`` write, which may have
waited on a frozen link past the lease). Every statement of the lease is abandoned (its socket shut) when it is
not answered within two leases, so a frozen link holds up a cycle no longer. The daemon's ledger connections get
an ``idle_in_transaction_session_timeout`` of one lease (see ``ledger_settings``): a transaction left open by a
daemon cut off mid-write, holding the leadership row, cannot hold up the next one's takeover.

Not covered: a launcher call that began while the lease was held may create its job after it ended; the next
leader adopts that job if it was created within ``adopt_clock_skew_seconds`` of the takeover.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
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


LEASE_MAX = 10.0  # seconds: below the server's keepalive death of a silent peer (5 + 3 x 2 s)
CLOCK_MARGIN = 0.99  # the two hosts' clocks may run at slightly different rates (NTP keeps them within 0.05%)
KEEPALIVES = {"tcp_keepalives_idle": 5, "tcp_keepalives_interval": 2, "tcp_keepalives_count": 3}


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """The leadership of one job tag on a PostgreSQL ledger, for one daemon. ``check(now)`` once a cycle."""

    def __init__(self, dialect: PostgreSQL, tag: str, interval: float, holder: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.dialect, self.tag = dialect, tag
        self.key = f"provisioner:{tag}"
        self.holder = holder or holder_name()
        self.idle_ms = int(min(max(1.0, interval), LEASE_MAX) * 1000)  # the lease
        self.epoch: int | None = None
        self.proven_until = float("-inf")  # on ``monotonic``: see ``held``
        self._now = monotonic
        self._db: Any = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._touch, name="lease", daemon=True)
        self._beat.start()

    def ledger_settings(self) -> dict[str, str]:
        """Settings of the daemon's ledger connections: a transaction left open longer than a lease is ended by the
        server (a daemon cut off in the middle of a fenced write holds the leadership row)."""
        return {"idle_in_transaction_session_timeout": f"{self.idle_ms}ms"}

    def held(self) -> bool:
        """Whether this daemon can prove it holds the lease now: it took the lock, and the server answered a
        statement of the lease's session sent less than a lease ago. Never waits (a frozen link does not hold it up)."""
        return self.epoch is not None and self._now() < self.proven_until

    def _touch(self) -> None:
        """Keep the lease's session from looking idle, between cycles and during long ones."""
        while not self._stop.wait(self.idle_ms / 3000):
            with self._lock:
                if self._db is not None and not self.dialect.broken(self._db):
                    try:
                        self._ask("SELECT 1")
                    except self.dialect.Error:
                        pass  # the next check sees it

    def _ask(self, sql: str, args: tuple = ()) -> Any:
        """One statement on the lease's session, its first row. Answered: the lease is proven until its send time
        plus the lease. Not answered within two leases (a frozen link): its socket is shut, and it fails."""
        db, sent = self._db, self._now()
        timer = threading.Timer(2 * self.idle_ms / 1000, _shut, (db,))
        timer.daemon = True
        timer.start()
        try:
            row = db.execute(sql, args).fetchone() if args else db.execute(sql).fetchone()
        finally:
            timer.cancel()
        self.proven_until = sent + self.idle_ms / 1000 * CLOCK_MARGIN
        return row

    def _connection(self) -> Any:
        if self._db is None or self.dialect.broken(self._db):
            self._db = None
            self._db = self.dialect.connect(False, idle_session_timeout=f"{self.idle_ms}ms", **KEEPALIVES)
        return self._db

    def check(self, now: float) -> Role:
        """Still active, or now active (the lock taken, the epoch incremented), or standby."""
        with self._lock:
            return self._check(now)

    def _check(self, now: float) -> Role:
        if self.epoch is not None and (self._db is None or self.dialect.broken(self._db)):
            self._drop()  # the session that held the lock is gone, and the lock with it
        try:
            self._connection()
            if self.epoch is not None:
                row = self._ask("SELECT epoch, holder, since FROM leadership WHERE tag = %s", (self.tag,))
                if row is not None and row[0] == self.epoch:
                    return Role(True, self.epoch, row[1], row[2])
                self._drop()  # another daemon took over (we lost the session unnoticed): let go of the lock
                self._connection()
                return self._standby()
            if self._ask("SELECT pg_try_advisory_lock(hashtext(%s))", (self.key,))[0]:
                return self._take(now)
            return self._standby()
        except self.dialect.Error as exc:
            self._drop()
            return Role(False, problem=f"ledger unreachable: {redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)}")

    def _take(self, now: float) -> Role:
        with self._db.transaction():  # waits while a cut-off leader's open transaction holds the row (a lease)
            epoch = self._ask(
                "INSERT INTO leadership (tag, epoch, holder, since) VALUES (%s, 1, %s, %s) "
                "ON CONFLICT (tag) DO UPDATE SET epoch = leadership.epoch + 1, holder = excluded.holder, "
                "since = excluded.since RETURNING epoch", (self.tag, self.holder, now),
            )[0]
            self._ask("INSERT INTO leadership_history (tag, epoch, holder, since) VALUES (%s, %s, %s, %s) "
                      "RETURNING epoch", (self.tag, epoch, self.holder, now))
        self.epoch = epoch
        return Role(True, epoch, self.holder, now)

    def _standby(self) -> Role:
        row = self._ask("SELECT holder, since FROM leadership WHERE tag = %s", (self.tag,))
        return Role(False, holder=row[0] if row else "", since=row[1] if row else None)

    def release(self) -> None:
        """Step down: the lock goes (with the session), the epoch stays for the next one to increment."""
        with self._lock:
            self._drop()

    def close(self) -> None:
        self._stop.set()
        self.release()

    def _drop(self) -> None:
        self.epoch = None  # ``held()`` is False from now on
        if self._db is not None:
            with contextlib.suppress(Exception):  # a connection already gone
                if not self.dialect.broken(self._db):  # let go now, not when the server sees the socket close
                    self._ask("SELECT pg_advisory_unlock_all()")
            with contextlib.suppress(Exception):
                self._db.close()
        self._db, self.proven_until = None, float("-inf")


def _shut(db: Any) -> None:
    """Shut a connection's socket down (from another thread): a statement waiting on it fails at once."""
    with contextlib.suppress(Exception):
        with socket.socket(fileno=os.dup(db.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)

