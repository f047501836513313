"""``provisioner check``: validate everything, start nothing."""

from __future__ import annotations

import statistics

import click

from ..logs import setup
from ..config import Settings
from ..ledger import select
from .common import config_option, validate


def pacing_warning(settings: Settings, now: float) -> str:
    """Whether ``launch_concurrency``, not ``launch_interval``, sets the launch rate, as the ledger's submission
    times of the last day say ("" when it does not, or nothing was measured)."""
    try:
        ledger = select.open_ledger(settings, readonly=True)
    except Exception:  # noqa: BLE001 - no ledger to read: nothing measured
        return ""
    if ledger is None:
        return ""
    try:
        took = ledger.submit_seconds(now - 86400.0)
    finally:
        ledger.close()
    if not took:
        return ""
    floor = statistics.median(took) / settings.launch_concurrency
    if settings.launch_interval >= floor:
        return ""
    return (f"launch_interval {settings.launch_interval:g} s is below the median submission time "
            f"{statistics.median(took):.1f} s / launch_concurrency {settings.launch_concurrency} = {floor:.1f} s: "
            f"concurrency caps the rate at about {60 / floor:.0f} launches a minute, not pacing")


@click.command()
@config_option
@click.option("--network", is_flag=True, help="Also reach the remote services (a ping each).")
def check(config_path, network: bool) -> None:
    """Validate the config, the variables it names, the plugins and their prerequisites, and the state directory
    (created and test-written). Starts nothing; ``run`` validates the same before its first cycle.

    Exits 0 when all is well, or 2 with one line per problem: file, key path, reason.
    """
    setup("WARNING")
    loaded = validate(config_path, network=network)
    loaded.runtime.close()
    warning = pacing_warning(loaded.config.settings, loaded.context.clock.now())
    if warning:
        click.echo(f"warning: {warning}", err=True)
    pools = loaded.runtime.pools
    click.echo(f"{loaded.config.path}: ok ({len(pools)} pools, {sum(len(p.udids) for p in pools)} phones named by UDID)")
