"""``provisioner check``: validate everything, start nothing."""

from __future__ import annotations

import click

from ..logs import setup
from .common import config_option, validate


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
    pools = loaded.runtime.pools
    click.echo(f"{loaded.config.path}: ok ({len(pools)} pools, {sum(len(p.udids) for p in pools)} phones named by UDID)")
