"""Copy one ledger into another (an SQLite ledger into PostgreSQL, when a second host comes): launches, holds and
daily counts, ids preserved, in one transaction on the target. A target that holds anything is refused unless
``force`` (then what it held is replaced)."""

from __future__ import annotations

from .core import Ledger

TABLES = ("launches", "holds", "launch_days")
CHUNK = 5000


class NotEmpty(Exception):
    """The target ledger already holds launches, holds or daily counts."""


def copy_ledger(source: Ledger, target: Ledger, force: bool = False) -> dict[str, int]:
    """Rows copied per table."""
    copied = {}
    with target.transaction() as db:
        held = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
        if any(held.values()) and not force:
            raise NotEmpty(", ".join(f"{n} {t}" for t, n in held.items() if n))
        for table in reversed(TABLES):
            db.execute(f"DELETE FROM {table}")
        for table in TABLES:
            wanted = target.dialect.columns(db, table)
            columns = [c for c in _columns(source, table) if c in wanted]
            names = ", ".join(columns)
            insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
            cursor = source.conn.execute(f"SELECT {names} FROM {table}")
            copied[table] = 0
            while rows := cursor.fetchmany(CHUNK):
                db.executemany(insert, rows)
                copied[table] += len(rows)
        target.dialect.ids_copied(db, "holds")
    return copied


def _columns(ledger: Ledger, table: str) -> list[str]:
    cursor = ledger.conn.execute(f"SELECT * FROM {table} LIMIT 0")
    return [d[0] for d in cursor.description]
