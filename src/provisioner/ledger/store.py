"""The ledger's connection and its write path, whichever the backend.

Owns the one connection (made again if it broke) and the lock the loop and the submission threads share it
under; autocommitted statements; this thread's ``batch`` of writes (one transaction at its end); and the fence:
once ``fence`` holds (job tag, epoch), every write runs in a transaction that first checks, holding the row, that
the epoch is still the tag's current one (``Fenced`` if not). May not touch: what the rows mean (launches, holds).
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

    def write(self, sql: str, args: Sequence) -> int | None:
        """Run one write of a launch now, or keep it for the end of this thread's ``batch``. How many rows it
        changed (None: kept for later)."""
        batch = getattr(self._local, "batch", None)
        if batch is not None:
            batch.append((sql, tuple(args)))
            return None
        if self.fence is None:
            with self.lock:
                return self.exec(sql, args).rowcount
        return self._apply([(sql, tuple(args))])[0]

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
        Should the transaction fail, each write is tried again on its own, and the first error raised."""
        self._local.batch = writes = []
        try:
            yield
        finally:
            self._local.batch = None
            if writes:
                self._flush(writes)

    def _flush(self, writes: list[tuple[str, tuple]]) -> None:
        with self.lock:
            try:
                self._apply(writes)
                return
            except self.dialect.Error:
                pass
            errors = []
            for write in writes:
                try:
                    self._apply([write])
                except self.dialect.Error as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]

    def close(self) -> None:
        with self.lock:
            self.db.close()
