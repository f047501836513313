"""Which ledger a config means: the SQLite file under ``state_dir``, or the PostgreSQL database whose connection
string is in the variable ``ledger_url_env`` names (its value, and its password, never in a log line)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..config import Settings
from ..logs import add_secrets
from .core import Ledger
from .dialects import Dialect, PostgreSQL, SQLite
from .leadership import Lease

LEDGER_FILE = "ledger.sqlite3"


def sqlite_path(settings: Settings) -> Path:
    return settings.state_dir / LEDGER_FILE


def postgresql(url: str) -> PostgreSQL:
    """A PostgreSQL dialect for ``url``, whose secrets are redacted from every log line from now on."""
    secrets = [url]
    try:
        import psycopg

        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
        if password:
            secrets.append(str(password))
    except Exception:  # noqa: BLE001 - a connection string psycopg cannot parse fails on connecting, redacted
        pass
    add_secrets(secrets)
    return PostgreSQL(url)


def dialect_for(settings: Settings, environ: Mapping[str, str] | None = None) -> Dialect:
    environ = os.environ if environ is None else environ
    if settings.ledger == "postgresql":
        return postgresql(environ.get(settings.ledger_url_env or "", ""))
    return SQLite(sqlite_path(settings))


def exists(settings: Settings) -> bool:
    """Whether there is a ledger to read (a PostgreSQL one always is: it is made on first use)."""
    return settings.ledger == "postgresql" or sqlite_path(settings).exists()


def open_ledger(settings: Settings, readonly: bool = False, environ: Mapping[str, str] | None = None) -> Ledger | None:
    """The config's ledger: for writing (made and migrated if need be), or read-only (None when an SQLite ledger
    does not exist yet)."""
    if readonly and not exists(settings):
        return None
    return Ledger(dialect_for(settings, environ), readonly=readonly)


def open_daemon_ledger(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[Ledger, Lease | None]:
    """The daemon's ledger, and its lease when several daemons may share it (PostgreSQL: it starts as a standby,
    keeping nothing in memory until it takes over)."""
    dialect = dialect_for(settings, environ)
    if isinstance(dialect, PostgreSQL):
        lease = Lease(dialect, settings.job_tag, settings.interval)
        dialect.settings.update(lease.ledger_settings())
        return Ledger(dialect, follow=True), lease
    return Ledger(dialect), None
