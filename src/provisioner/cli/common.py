"""What the subcommands share: the config option, and every problem as one line on stderr (exit 2).

Loading a config into live plugins is the host's (``provisioner.runtime``); this module only reports."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import click

from ..config import Config, ConfigError, ConfigProblem, ledger_problems, load, state_problems
from ..plugins import check_plugins
from ..runtime import Loaded, load_all
from ..values import one_line

EXIT_PROBLEMS = 2

config_option = click.option(
    "-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The config file (TOML).",
)


def fail(problems: list[ConfigProblem] | list[str]) -> NoReturn:
    for problem in problems:
        click.echo(one_line(str(problem)), err=True)
    sys.exit(EXIT_PROBLEMS)


def validate(
    path: Path, network: bool = False, dry_run: bool = False, environ: Mapping[str, str] | None = None,
) -> Loaded:
    """What ``check`` validates and ``run`` validates before its first cycle, the same for both: the host's
    config, the plugins' tables and the variables they name, each plugin's own ``check(pools, network)``, and a
    state directory that can be written. Any problem: one line each on stderr, exit 2."""
    loaded, problems = load_all(path, dry_run=dry_run, environ=environ)
    if loaded is None:
        fail(problems)
    if not any(p.key == "provisioner.state_dir" for p in problems):
        problems += state_problems(loaded.config)
    problems += ledger_problems(loaded.config, os.environ if environ is None else environ)
    if not problems:
        problems += check_plugins(loaded.runtime, str(loaded.config.path), network)
    if problems:
        loaded.runtime.close()
        fail(problems)
    return loaded


def config_only(path: Path, writable_state: bool = False) -> Config:
    """The config alone, for commands that need no plugin; with ``writable_state``, a usable state directory."""
    try:
        config, problems = load(path)
    except ConfigError as exc:
        fail(exc.problems)
    if writable_state and not problems:
        problems = state_problems(config)
    if not problems:
        problems = ledger_problems(config, os.environ)
    if problems:
        fail(problems)
    return config
