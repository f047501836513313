"""``provisioner ledger copy --to postgresql``: move an SQLite ledger into PostgreSQL (for a second host)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..ledger import Ledger, SQLite
from ..ledger.copy import NotEmpty, copy_ledger
from ..ledger.select import postgresql, sqlite_path
from ..logs import redact
from ..values import one_line
from .common import config_only, config_option, fail


@click.group(name="ledger")
def ledger_group() -> None:
    """The ledger: copy it from one backend to another."""


@ledger_group.command()
@config_option
@click.option("--to", "target", type=click.Choice(["postgresql"]), required=True,
              help="Where to: the database whose connection string is in the variable ledger_url_env names.")
@click.option("--force", is_flag=True, help="Replace whatever the target ledger holds.")
def copy(config_path: Path, target: str, force: bool) -> None:
    """Copy the SQLite ledger under state_dir (launches, holds, daily counts; ids kept) into PostgreSQL.

    Stop the daemon first. Refuses a target that holds anything, unless --force."""
    settings = config_only(config_path).settings
    source_path = sqlite_path(settings)
    if not source_path.is_file():
        fail([f"{source_path}: no SQLite ledger to copy"])
    name = settings.ledger_url_env
    if not name:
        fail([f"{config_path}: provisioner.ledger_url_env: missing (the variable holding the connection string)"])
    url = os.environ.get(name, "")
    if not url:
        fail([f"{config_path}: provisioner.ledger_url_env: environment variable {name} is not set"])
    dialect = postgresql(url)
    source = Ledger(SQLite(source_path), readonly=True)
    try:
        destination = Ledger(dialect, follow=True)
    except Exception as exc:  # noqa: BLE001 - the driver's error: one line, redacted
        source.close()
        fail([redact(f"{dialect.describe()}: cannot open the ledger: {one_line(str(exc))}")])
    try:
        copied = copy_ledger(source, destination, force)
    except NotEmpty as exc:
        fail([f"{dialect.describe()}: the target ledger is not empty ({exc}); --force replaces it"])
    finally:
        source.close()
        destination.close()
    click.echo(f"copied {source_path} to {dialect.describe()}: " + ", ".join(f"{n} {t}" for t, n in copied.items()))


@ledger_group.command()
@config_option
def migrate(config_path: Path) -> None:
    """Bring the config's ledger's schema up to date (what the daemon does at start): for a database role that
    may run DDL when the daemon's may not."""
    settings = config_only(config_path).settings
    from ..ledger import select

    try:
        ledger = select.open_ledger(settings)
    except Exception as exc:  # noqa: BLE001 - the driver's error: one line, redacted
        fail([redact(f"cannot open the ledger ({settings.ledger}): {one_line(str(exc))}")])
    assert ledger is not None
    try:
        version = ledger.query("SELECT MAX(version) FROM schema_version")[0][0]
    finally:
        ledger.close()
    click.echo(f"{ledger.describe()}: schema version {version}")
