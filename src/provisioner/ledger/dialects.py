"""What differs between the ledger's backends: connecting, placeholders, transactions, locks, hints and types.

``Ledger`` (``core.py``) is written once, in SQLite's flavour of SQL with ``?`` placeholders; a dialect turns
that into what its database runs. SQLite is the embedded default (one host); PostgreSQL lets several hosts share
one ledger (``[provisioner] ledger = "postgresql"``), one of them active (see ``leadership.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


class Conn:
    """A connection that speaks the ledger's SQL (``?`` placeholders) whatever the backend: what ``transaction``
    yields and migrations run on."""

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw, self.dialect = raw, dialect

    def execute(self, sql: str, args: Sequence = ()) -> Any:
        return self.dialect.execute(self.raw, sql, tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence]) -> Any:
        cursor = self.raw.cursor()
        if rows:
            cursor.executemany(self.dialect.sql(sql), [tuple(r) for r in rows])
        return cursor


class Dialect:
    name = ""
    begin = "BEGIN"
    Error: type[Exception] = Exception  # the driver's base error
    IntegrityError: type[Exception] = Exception  # a unique constraint broken (two launches with one job id)

    def connect(self, readonly: bool) -> Any:
        raise NotImplementedError

    def sql(self, text: str) -> str:
        return text

    def execute(self, raw: Any, sql: str, args: tuple) -> Any:
        return raw.execute(self.sql(sql), args)

    def ddl(self, text: str) -> str:
        return text

    def noindex(self, column: str) -> str:
        """``column`` in a condition that must not pick an index (most launches have ended: never by state)."""
        return column

    def indexed_by(self, index: str) -> str:
        return ""

    def bucket(self, expr: str) -> str:
        """``expr`` truncated to an integer."""
        return f"CAST({expr} AS INTEGER)"

    def in_transaction(self, raw: Any) -> bool:
        raise NotImplementedError

    def broken(self, raw: Any) -> bool:
        """Whether the connection is gone for good (a new one is needed)."""
        return False

    def busy(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the database is busy for a moment (worth trying again soon)."""
        return False

    def columns(self, db: Conn, table: str) -> set[str]:
        raise NotImplementedError

    def ids_copied(self, db: Conn, table: str) -> None:
        """Rows were copied into ``table`` with their ids: the next id made must follow them."""

    @contextlib.contextmanager
    def migration_lock(self, db: Conn) -> Iterator[None]:
        """One transaction, no other process migrating at the same time."""
        raise NotImplementedError
        yield

    def describe(self) -> str:
        """Where the ledger is, for messages (never a password)."""
        raise NotImplementedError


WAL_TRIES = 50  # about 12 s in all


class SQLite(Dialect):
    name = "sqlite"
    begin = "BEGIN IMMEDIATE"
    Error = sqlite3.Error
    IntegrityError = sqlite3.IntegrityError

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self, readonly: bool) -> sqlite3.Connection:
        if readonly:
            return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                   isolation_level=None)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        for attempt in range(WAL_TRIES):  # switching a new file to WAL takes no busy timeout: another process
            try:  # opening it at the same moment makes it fail at once; it succeeds once that one is done
                db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if not self.busy(exc) or attempt == WAL_TRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        db.execute("PRAGMA synchronous=FULL")  # a launch written is a launch kept, even on power loss
        os.chmod(self.path, 0o600)
        return db

    def ddl(self, text: str) -> str:
        return text.replace("SERIAL_ID", "INTEGER PRIMARY KEY AUTOINCREMENT")

    def noindex(self, column: str) -> str:
        return f"+{column}"

    def indexed_by(self, index: str) -> str:
        return f" INDEXED BY {index}"

    def in_transaction(self, raw: sqlite3.Connection) -> bool:
        return raw.in_transaction

    def busy(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))

    def columns(self, db: Conn, table: str) -> set[str]:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}

    @contextlib.contextmanager
    def migration_lock(self, db: Conn) -> Iterator[None]:
        db.execute("BEGIN IMMEDIATE")  # the write lock: DDL is transactional in SQLite
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def describe(self) -> str:
        return str(self.path)


_REAL = re.compile(r"\bREAL\b")


class PostgreSQL(Dialect):
    """A PostgreSQL ledger; ``url`` is a libpq connection string (from the variable ``ledger_url_env`` names).

    Connections use TCP keepalives and a TCP user timeout (data sent and not acknowledged for 10 s ends the
    connection), so that a server or a peer that went away is noticed in seconds, idle or mid-statement.
    ``settings`` are server settings for every connection made from now on (see ``Lease.ledger_settings``)."""

    name = "postgresql"
    KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
                  "tcp_user_timeout": 10_000}
    CONNECT_TIMEOUT = 5
    MIGRATION_KEY = "provisioner:migrations"

    def __init__(self, url: str) -> None:
        import psycopg  # an optional extra: provisioner[postgresql]

        self.url = url
        self.settings: dict[str, str] = {}
        self.psycopg = psycopg
        self.Error = psycopg.Error
        self.IntegrityError = psycopg.IntegrityError

    def connect(self, readonly: bool, **settings: Any) -> Any:
        options = " ".join(f"-c {k}={v}" for k, v in {
            **({"default_transaction_read_only": "on"} if readonly else {}), **self.settings, **settings}.items())
        return self.psycopg.connect(
            self.url, autocommit=True, connect_timeout=self.CONNECT_TIMEOUT, application_name="provisioner",
            **({"options": options} if options else {}), **self.KEEPALIVES,
        )

    def sql(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s")

    def execute(self, raw: Any, sql: str, args: tuple) -> Any:
        return raw.execute(self.sql(sql), args) if args else raw.execute(sql)

    def ddl(self, text: str) -> str:
        return _REAL.sub("DOUBLE PRECISION", text).replace("SERIAL_ID", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")

    def bucket(self, expr: str) -> str:
        return f"CAST(TRUNC({expr}) AS INTEGER)"

    def in_transaction(self, raw: Any) -> bool:
        return raw.info.transaction_status != self.psycopg.pq.TransactionStatus.IDLE

    def broken(self, raw: Any) -> bool:
        return raw.closed or raw.broken

    def columns(self, db: Conn, table: str) -> set[str]:
        rows = db.execute("SELECT column_name FROM information_schema.columns "
                          "WHERE table_schema = current_schema() AND table_name = ?", (table,)).fetchall()
        return {r[0] for r in rows}

    @contextlib.contextmanager
    def migration_lock(self, db: Conn) -> Iterator[None]:
        db.execute("BEGIN")
        try:
            db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (self.MIGRATION_KEY,))  # until COMMIT
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def ids_copied(self, db: Conn, table: str) -> None:
        db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}")

    def describe(self) -> str:
        info = self.psycopg.conninfo.conninfo_to_dict(self.url)
        return f"postgresql://{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
