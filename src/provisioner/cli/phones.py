"""``provisioner phones``: hold a phone back by hand, release it, list what is held. Recorded in the ledger.

The running daemon reads the ledger each cycle, so a hold or a release takes effect at its next cycle.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from ..clock import SystemClock
from ..values import name_problem
from .common import config_only, config_option, fail
from .status import Duration, open_ledger, span, stamp


@click.group()
def phones() -> None:
    """Hold phones back by hand, release them, list the holds."""


@phones.command()
@config_option
@click.argument("udid")
@click.option("--for", "duration", type=Duration(), required=True, help="How long, e.g. 30m, 2h, 3d.")
@click.option("--reason", default="", help="Why (shown in status and report).")
@click.option("--force", is_flag=True, help="Hold it even though no pool names it by UDID.")
def hold(config_path: Path, udid: str, duration: float, reason: str, force: bool) -> None:
    """Hold phone UDID back: no launch on it until the time is up or it is released.

    The UDID must be one a pool names in its ``udids`` (or ``udid``), or a phone the ledger has launched on,
    unless ``--force``: a typo would hold nothing."""
    udid = udid.strip()
    if why := name_problem(udid, "UDID"):
        fail([f"UDID: {why}"])
    if duration <= 0:
        raise click.BadParameter("must be longer than 0", param_hint="--for")
    config = config_only(config_path, writable_state=True)
    ledger = open_ledger(config.settings, create=True)
    assert ledger is not None
    if not force and not any(udid in pool.udids for pool in config.pools) and udid not in ledger.last_used():
        ledger.close()
        fail([f"{config_path}: pools: no pool names phone {udid} and nothing was ever launched on it (a typo?); "
              "--force holds it anyway"])
    now = SystemClock().now()
    try:
        ledger.hold(udid, now, now + duration, "manual", reason.strip())
    finally:
        ledger.close()
    click.echo(f"{udid} held back until {stamp(now + duration)} ({span(duration)})" + (f": {reason}" if reason else ""))


@phones.command()
@config_option
@click.argument("udid")
@click.option("--reason", default="", help="Why (recorded in the ledger).")
def release(config_path: Path, udid: str, reason: str) -> None:
    """Release phone UDID: end its holds and forgive its failures so far."""
    settings = config_only(config_path, writable_state=True).settings
    ledger = open_ledger(settings, create=True)
    assert ledger is not None
    try:
        ended = ledger.release(udid.strip(), SystemClock().now(), reason.strip())
    finally:
        ledger.close()
    click.echo(f"{udid} released ({ended} hold{'s' if ended != 1 else ''} ended; earlier failures no longer count)")


@phones.command(name="held")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def held(config_path: Path, as_json: bool) -> None:
    """The holds recorded in the ledger that are in force now (by hand, or for failing jobs).

    Short backoffs after failed submissions are not recorded: ``provisioner status`` shows them too."""
    settings = config_only(config_path).settings
    ledger = open_ledger(settings)
    now = SystemClock().now()
    holds = ledger.holds(now) if ledger is not None else []
    if ledger is not None:
        ledger.close()
    if as_json:
        click.echo(json.dumps([asdict(h) for h in holds], indent=2))
        return
    if not holds:
        click.echo("no phone is held back")
    for h in holds:
        who = "by hand" if h.source == "manual" else "for failing jobs"
        click.echo(f"{h.udid}: held {who} since {stamp(h.since)}, {span(h.until - now)} more" + (f": {h.reason}" if h.reason else ""))
