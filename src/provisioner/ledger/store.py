"""The ledger's connection and its write path, whichever the backend.

Owns the one connection (made again if it broke) and the lock the loop and the submission threads share it
under; autocommitted statements; this thread's ``batch`` of writes (one transaction at its end); and the fence:
once ``fence`` holds (job tag, epoch), every write runs in a transaction that first checks, holding the row, that
the epoch is still the tag's current one (``Fenced`` if not). May not touch: what the rows mean (launches, holds).

A write the database refuses (a read-only or full disk, a lost server) that the launches in memory already hold (a
``batch``'s, or one made with ``keep``) is not forgotten: it stays ``pending``, and every later write, and every
batch's end, first tries the pending ones again, in order, in one transaction. While any is pending, ``error``
says why (the loop stops feeding systemd's watchdog); it clears once they are written. Memory and the database
agree again then, or, if they never can, systemd restarts the daemon, which loads memory from the database.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from .dialects import Conn, Dialect


class Fenced(Exception):
    """This daemon's leadership epoch is no longer current: another daemon took over; nothing was written."""


class Store:
    def __init__(self, dialect: Dialect, readonly: bool) -> None:
        self.dialect, self.readonly = dialect, readonly
        self.lock = threading.RLock()
        self._local = threading.local()  # .batch: this thread's writes waiting for the end of its batch
        self.fence: tuple[str, int] | None = None  # (job tag, epoch) every launch write checks
        self.pending: list[tuple[str, tuple]] = []  # writes memory holds that the database refused, oldest first
        self.error: str | None = None  # why they were refused, while any is pending
        self.db = dialect.connect(readonly)

    @property
    def conn(self) -> Conn:
        """The connection (made again if it broke: a database that went away and came back)."""
        with self.lock:
            if self.dialect.broken(self.db):
                self.db = self.dialect.connect(self.readonly)
            return Conn(self.db, self.dialect)

    def exec(self, sql: str, args: Sequence = ()) -> Any:
        """One statement (autocommitted), tried once more on a new connection if the one it ran on broke (a server
        that restarted since the connection's last use)."""
        with self.lock:
            try:
                return self.conn.execute(sql, args)
            except self.dialect.Error:
                if not self.dialect.broken(self.db):
                    raise
            return self.conn.execute(sql, args)

    def _begin(self) -> Conn:
        """A transaction begun (on a new connection if the one it began on broke)."""
        self.exec(self.dialect.begin)
        return self.conn

    def query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        """Rows of a read (for the history module: reports and retention)."""
        with self.lock:
            return self.exec(sql, args).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Conn]:
        """One write transaction, the ledger locked for its length (keep it short): yields the connection."""
        with self.lock:
            db = self._begin()
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def write(self, sql: str, args: Sequence, keep: bool = False) -> int | None:
        """Run one write of a launch now (after the pending ones), or keep it for the end of this thread's
        ``batch``. How many rows it changed (None: kept for later). Refused, it raises; with ``keep`` (the caller
        holds it in memory already), it is kept pending instead."""
        batch = getattr(self._local, "batch", None)
        if batch is not None:
            batch.append((sql, tuple(args)))
            return None
        with self.lock:
            try:
                self.catch_up()
                if self.fence is None:
                    return self.exec(sql, args).rowcount
                return self._apply([(sql, tuple(args))])[0]
            except self.dialect.Error as exc:
                if not keep:
                    raise
                self.pending.append((sql, tuple(args)))
                self.error = _describe(exc)
                return None

    def catch_up(self) -> None:
        """Write the pending writes, in one transaction; raise (and keep them) if the database still refuses."""
        with self.lock:
            if not self.pending:
                return
            try:
                self._apply(self.pending)
            except self.dialect.Error as exc:
                self.error = _describe(exc)
                raise
            self.pending, self.error = [], None

    def forget_pending(self) -> None:
        """Drop the pending writes (memory is about to be loaded again from the database: a takeover)."""
        with self.lock:
            self.pending, self.error = [], None

    def _apply(self, writes: list[tuple[str, tuple]]) -> list[int]:
        """``writes`` in one transaction, fenced by the epoch if there is one; rows each changed."""
        with self.lock:
            db = self._begin()
            try:
                if self.fence is not None:
                    row = db.execute("SELECT epoch FROM leadership WHERE tag = ? FOR SHARE", (self.fence[0],)).fetchone()
                    if row is None or row[0] != self.fence[1]:
                        raise Fenced(f"epoch {self.fence[1]} is no longer current"
                                     f"{'' if row is None else f' (now {row[0]})'}: another daemon took over")
                counts = [db.execute(sql, args).rowcount for sql, args in writes]
                db.execute("COMMIT")
                return counts
            except BaseException:
                with contextlib.suppress(Exception):
                    if self.dialect.in_transaction(db.raw):
                        db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """This thread's writes inside the block reach the database together, in one transaction, at its end (one
        fsync, not one per write). Other threads' writes go on as usual. Reads see the launches in memory at once.
        The pending writes go first; should the transaction fail, they all stay pending, and the error is raised."""
        self._local.batch = writes = []
        try:
            yield
        finally:
            self._local.batch = None
            if writes or self.pending:
                self._flush(writes)

    def _flush(self, writes: list[tuple[str, tuple]]) -> None:
        """A batch's writes, after the pending ones; refused, they all stay pending (memory holds them)."""
        with self.lock:
            self.pending.extend(writes)
            self.catch_up()

    def close(self) -> None:
        with self.lock:
            self.db.close()


def _describe(exc: BaseException) -> str:
    """The database's refusal on one line (a driver's message may span several)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
