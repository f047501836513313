"""``provisioner hyperexecute-update``: the CLI's self-update, as an explicit step, never during a launch."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from provisioner import ConfigError, plugin_options

from .launcher import update_cli
from .options import LAUNCHER_OPTIONS


@click.command("hyperexecute-update")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The config file (TOML); its [plugins.hyperexecute] table names the CLI.")
def hyperexecute_update(config_path: Path) -> None:
    """Update the hyperexecute CLI in place, waiting until no launch is running it (a lock in the state dir)."""
    try:
        options, context = plugin_options(config_path, "hyperexecute", LAUNCHER_OPTIONS)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    ok, message = update_cli(options, context)
    click.echo(message, err=not ok)
    sys.exit(0 if ok else 1)
