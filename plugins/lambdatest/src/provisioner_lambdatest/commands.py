"""``provisioner hyperexecute-update``: the CLI's self-update, as an explicit step, never during a launch."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from provisioner import PluginContext
from provisioner.config import ConfigError, load, validate_table

from .launcher import update_cli
from .options import LAUNCHER_OPTIONS


@click.command("hyperexecute-update")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The config file (TOML); its [plugins.hyperexecute] table names the CLI.")
def hyperexecute_update(config_path: Path) -> None:
    """Update the hyperexecute CLI in place, waiting until no launch is running it (a lock in the state dir)."""
    try:
        config, problems = load(config_path)
    except ConfigError as exc:
        problems = exc.problems
    else:
        options = validate_table(
            config.plugin_options.get("hyperexecute", {}), LAUNCHER_OPTIONS, str(config_path), "plugins.hyperexecute",
            problems,
        )
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    ok, message = update_cli(options, PluginContext(state_dir=config.settings.state_dir))
    click.echo(message, err=not ok)
    sys.exit(0 if ok else 1)
