"""What the subcommands share: loading a config into live plugins, with every problem as one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import click

from ..clock import Clock, SystemClock
from ..config import Config, ConfigError, ConfigProblem, load, state_problems
from ..logs import add_secrets
from ..manager import PluginManager, plugin_manager
from ..plugins import Runtime, build, check_plugins
from ..types import PluginContext
from ..values import one_line

EXIT_PROBLEMS = 2

config_option = click.option(
    "-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The config file (TOML).",
)


@dataclass
class Loaded:
    config: Config
    manager: PluginManager
    runtime: Runtime
    context: PluginContext


def fail(problems: list[ConfigProblem] | list[str]) -> NoReturn:
    for problem in problems:
        click.echo(one_line(str(problem)), err=True)
    sys.exit(EXIT_PROBLEMS)


def secret_values(config: Config, runtime: Runtime, manager: PluginManager, environ: Mapping[str, str]) -> list[str]:
    """The values of every environment variable the config names as a secret."""
    names: set[str] = set()
    for role, by_name in manager.all_specs().items():
        for name, offers in by_name.items():
            for offer in offers:
                for key, option in offer.spec.options.items():
                    if option.env:
                        table = config.plugin_options.get(name, {})
                        names.add(table.get(key, option.default) if isinstance(table, Mapping) else option.default)
                for key, option in offer.spec.pool_options.items():
                    if option.env:
                        for pool in runtime.pools:
                            if pool.launcher == name and isinstance(pool.launch.get(key), str):
                                names.add(pool.launch[key])
    return [environ[n] for n in names if isinstance(n, str) and environ.get(n)]


def load_all(
    path: Path, clock: Clock | None = None, dry_run: bool = False, environ: Mapping[str, str] | None = None,
) -> tuple[Loaded | None, list[ConfigProblem]]:
    environ = os.environ if environ is None else environ
    try:
        config, problems = load(path)
    except ConfigError as exc:
        return None, exc.problems
    manager = plugin_manager(environ=environ)
    context = PluginContext(
        clock=clock or SystemClock(), state_dir=config.settings.state_dir, environ=environ,
        seed=config.settings.seed or 0, job_tag=config.settings.job_tag, dry_run=dry_run,
    )
    # even after the host's own problems, so that every problem shows at once; but then start no plugin
    runtime, more = build(config, manager, context, instantiate=not problems)
    problems += more
    add_secrets(secret_values(config, runtime, manager, environ))
    return Loaded(config, manager, runtime, context), problems


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
    if problems:
        fail(problems)
    return config
