"""Loading a config into live plugins: what ``run``, ``check``, ``status`` and ``simulate`` share.

The CLI calls this module and turns its problems into lines and exit codes; nothing here imports the CLI.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clock import Clock, SystemClock
from .config import Config, ConfigError, ConfigProblem, load, validate_options
from .logs import add_secrets
from .manager import PluginManager, plugin_manager
from .plugins import Runtime, build
from .types import Option, PluginContext


@dataclass
class Loaded:
    """A config with its plugins: the manager that found them, the objects built, and the context they got."""

    config: Config
    manager: PluginManager
    runtime: Runtime
    context: PluginContext


def context_for(config: Config, clock: Clock | None = None, environ: Mapping[str, str] | None = None,
                dry_run: bool = False) -> PluginContext:
    """The context every factory of this config gets."""
    return PluginContext(
        clock=clock or SystemClock(), state_dir=config.settings.state_dir,
        environ=os.environ if environ is None else environ, seed=config.settings.seed or 0,
        job_tag=config.settings.job_tag, dry_run=dry_run, config_dir=config.path.resolve().parent,
    )


def secret_values(config: Config, runtime: Runtime, manager: PluginManager, environ: Mapping[str, str]) -> list[str]:
    """The values of every environment variable the config names as a secret."""
    names: set[str] = set()
    for by_name in manager.all_specs().values():
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
    """The config at ``path`` with its plugins built (none built when the host's own part has problems: then every
    problem is still listed). None when the file cannot be read at all. The secrets it names are redacted from
    every log line from now on."""
    environ = os.environ if environ is None else environ
    try:
        config, problems = load(path)
    except ConfigError as exc:
        return None, exc.problems
    manager = plugin_manager(environ=environ)
    context = context_for(config, clock, environ, dry_run)
    runtime, more = build(config, manager, context, instantiate=not problems)
    problems += more
    add_secrets(secret_values(config, runtime, manager, environ))
    return Loaded(config, manager, runtime, context), problems


def plugin_options(
    path: str | Path, name: str, options: Mapping[str, Option], environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], PluginContext]:
    """A plugin's ``[plugins.<name>]`` table of the config at ``path``, validated against ``options``, and the
    context the daemon would give it: for a plugin's own subcommands (``provisioner_commands``). Raises
    ``ConfigError`` with every problem of the host's part and of the table. Example::

        options, context = plugin_options(config_path, "usbrack", OPTIONS)
    """
    config, problems = load(path)
    try:
        table = validate_options(config.plugin_options.get(name, {}), options, str(config.path), f"plugins.{name}")
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return table, context_for(config, environ=environ)


_collector_settled = False


def settle_collector() -> None:
    """Fit Python's garbage collector to a process that runs the loop (``run``, ``simulate``): its heap is mostly
    long-lived (config, plugins, the launches in flight) and every cycle makes tens of thousands of short-lived
    objects (a phone, a job, a launch's view each). With the default thresholds a collection of the whole heap
    ran every cycle or two at 50,000 phones, a fifth of the cycle, and young collections ran several times a
    cycle over its lists of phones and launches (bench/scale_grid.py). So: what is garbage now is collected, what
    lives on from start-up is moved out of the collector's view (``gc.freeze``: refcounting still frees it), and
    the youngest generation is collected once 50,000 more objects live than were freed, instead of 700 (a cycle's
    own objects are freed by refcounting when it ends). Once per process; tuned on CPython 3.11."""
    global _collector_settled
    if not _collector_settled:
        _collector_settled = True
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 10, 10)
