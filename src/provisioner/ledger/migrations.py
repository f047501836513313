"""The ledger's schema, as versioned migrations that run at start under a lock, for every backend.

``schema_version`` holds one row per migration applied. Migration N is a list of steps: an SQL statement both
dialects run (types translated by the dialect: ``REAL`` is PostgreSQL's ``DOUBLE PRECISION``), a mapping from a
dialect's name to its own statements, or a function of the connection. An SQLite ledger written before
migrations existed has no ``schema_version`` and may have any of the columns added so far: every step is
idempotent, so such a ledger is brought up to date in place from migration 1.

Adding a column to ``launches`` is one line: append it to ``ADDED_COLUMNS`` (append only). Every start adds the
columns a ledger lacks, under the same lock, whatever its version; launches read them into ``Launch`` fields of
the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

# (name, type) of the columns added after the first schema, in the order they were added: append only
ADDED_COLUMNS = (
    ("ran_at", "REAL"),  # when the job was first seen running
    ("claimed_at", "REAL"),  # when its worker was seen to have claimed a task
    ("claim_baseline", "TEXT"),  # the worker's latest task when the launch was planned (NULL: not known)
    ("submit_seconds", "REAL"),  # how long the launcher took to submit it
    ("kind", "TEXT NOT NULL DEFAULT 'demand'"),  # demand: for a pending task; warm: started ahead of demand
    ("sent_at", "REAL"),  # when the launcher returned it submitted: the cloud has the job from then on
)
BASE_COLUMNS = ("id", "pool", "udid", "state", "submitted_at", "updated_at", "job_id", "outcome", "detail")
NOT_READ = {"submit_seconds"}  # columns of launches that are not a Launch field

Step = Union[str, dict[str, list[str]], Callable[[Any, Any], None]]


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    steps: tuple[Step, ...]


def _add_missing_columns(db: Any, dialect: Any) -> None:
    have = dialect.columns(db, "launches")
    for name, kind in ADDED_COLUMNS:
        if name not in have:
            db.execute(dialect.ddl(f"ALTER TABLE launches ADD COLUMN {name} {kind}"))


def _unique_job_ids(db: Any, dialect: Any) -> None:
    """Job ids are unique. An SQLite ledger written before they were may hold two launches sharing one (a wrong
    adoption): the job stays with the launch that recorded it first; the other loses the id."""
    if dialect.name == "sqlite":
        db.execute(
            "UPDATE launches SET job_id = '', detail = 'job id shared with an earlier launch: removed' "
            "WHERE job_id != '' AND rowid NOT IN (SELECT MIN(rowid) FROM launches WHERE job_id != '' GROUP BY job_id)"
        )
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS launches_job_id ON launches(job_id) WHERE job_id != ''")


MIGRATIONS = (
    Migration(1, "launches, holds and daily counts", (
        """CREATE TABLE IF NOT EXISTS launches (
            id TEXT PRIMARY KEY,
            pool TEXT NOT NULL,
            udid TEXT NOT NULL,
            state TEXT NOT NULL,
            submitted_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            job_id TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX IF NOT EXISTS launches_state ON launches(state)",
        "CREATE INDEX IF NOT EXISTS launches_udid ON launches(udid, submitted_at)",
        "CREATE INDEX IF NOT EXISTS launches_udid_updated ON launches(udid, updated_at)",
        "CREATE INDEX IF NOT EXISTS launches_updated ON launches(updated_at)",
        "CREATE INDEX IF NOT EXISTS launches_submitted ON launches(submitted_at)",
        # source: manual | jobs (held for failing jobs) | release (an operator's release, a marker)
        """CREATE TABLE IF NOT EXISTS holds (
            id SERIAL_ID,
            udid TEXT NOT NULL,
            since REAL NOT NULL,
            until REAL NOT NULL,
            source TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            released_at REAL)""",
        "CREATE INDEX IF NOT EXISTS holds_udid ON holds(udid, since)",
        "CREATE INDEX IF NOT EXISTS holds_until ON holds(until)",
        "CREATE INDEX IF NOT EXISTS holds_source ON holds(source, udid, since)",
        # launches older than the retention horizon, folded per day (YYYY-MM-DD, UTC, of submission), pool, phone
        # and ending (state: ended | failed; ran: 1 if the job was seen running); see history.prune
        """CREATE TABLE IF NOT EXISTS launch_days (
            day TEXT NOT NULL,
            pool TEXT NOT NULL,
            udid TEXT NOT NULL,
            state TEXT NOT NULL,
            outcome TEXT NOT NULL,
            ran INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (day, pool, udid, state, outcome, ran))""",
    )),
    Migration(2, "the columns added to launches", (_add_missing_columns,)),
    Migration(3, "covering indexes for report's counts and medians", (
        "CREATE INDEX IF NOT EXISTS launches_endings ON launches(pool, udid, state, outcome, ran_at, submitted_at)",
        "CREATE INDEX IF NOT EXISTS launches_times ON launches(pool, submitted_at, ran_at, claimed_at)",
    )),
    Migration(4, "unique job ids", (_unique_job_ids,)),
    Migration(5, "leadership: the fencing epoch per job tag, and who held it", (
        """CREATE TABLE IF NOT EXISTS leadership (
            tag TEXT PRIMARY KEY, epoch INTEGER NOT NULL, holder TEXT NOT NULL, since REAL NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS leadership_history (
            tag TEXT NOT NULL, epoch INTEGER NOT NULL, holder TEXT NOT NULL, since REAL NOT NULL,
            PRIMARY KEY (tag, epoch))""",
    )),
    Migration(6, "warm launches by time (report's idle-outs and waiting minutes: few rows among many)", (
        _add_missing_columns,  # kind
        "CREATE INDEX IF NOT EXISTS launches_warm ON launches(submitted_at) WHERE kind = 'warm'",
    )),
)
LATEST = MIGRATIONS[-1].version


def migrate(db: Any, dialect: Any, now: float) -> list[int]:
    """Apply the migrations ``db`` lacks, and add the columns it lacks, in one transaction under the dialect's
    migration lock (a second daemon starting at the same time waits, then finds nothing to do). Returns the
    versions applied."""
    applied = []
    with dialect.migration_lock(db):
        db.execute(dialect.ddl("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"))
        current = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            for step in migration.steps:
                if callable(step):
                    step(db, dialect)
                    continue
                for sql in step.get(dialect.name, []) if isinstance(step, dict) else [step]:
                    db.execute(dialect.ddl(sql))
            db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (migration.version, now))
            applied.append(migration.version)
        _add_missing_columns(db, dialect)  # a column appended to ADDED_COLUMNS since: no new version needed
    return applied
