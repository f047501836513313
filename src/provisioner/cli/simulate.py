"""``provisioner simulate``: the production loop on a virtual clock against the simulated fleet."""

from __future__ import annotations

import json
from dataclasses import replace
import sys
from pathlib import Path

import click

from ..logs import setup
from ..simulate.metrics import Metrics, measure
from ..simulate.report import checks, columns, render, render_checks, table
from ..simulate.runner import Progress, run_baseline, run_provisioner
from ..simulate.scenario import ScenarioError, compose, load_scenario, settings_table
from ..simulate.tomlout import dumps
from ..plots import plot_check
from ..runtime import settle_collector
from .common import EXIT_PROBLEMS, config_option


def _bar(label: str, length: float):
    """A progress bar on stderr, moved by fleet time; returns (bar, callback)."""
    bar = click.progressbar(length=max(1, int(length)), label=label, file=sys.stderr, show_eta=False)
    done = [0]

    def progress(elapsed: float) -> None:
        step = min(int(elapsed), bar.length) - done[0]
        if step > 0:
            bar.update(step)
            done[0] += step

    return bar, progress


@click.command()
@config_option
@click.option("--scenario", "scenario_name", required=True, metavar="NAME|PATH",
              help="A scenario name (burst, slow-start, shared, faults, large) or a scenario file.")
@click.option("--seed", type=int, help="Seed of the fleet and the planner (default: the scenario's).")
@click.option("--policy", type=click.Choice(["both", "provisioner", "baseline"]), default="both", show_default=True,
              help="Run the provisioner, the old tool's policy, or both side by side.")
@click.option("--warm", "warm_values", metavar="N|auto[,...]",
              help="Run the loop once per value, overriding every pool's warm (e.g. 0,4,auto: demand only, 4 warm "
                   "workers, the arrival-rate estimate), side by side.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw pending, starting, busy and idle per pool over time and the task waits, for each loop run "
                   "(PNG or SVG by extension; without --warm: compares --warm 0,auto). Needs provisioner[plot].")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when a target of the scenario is missed.")
@click.option("--write-config", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the composed config (for `provisioner run`) to this file and exit.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              default="ERROR", show_default=True)
def simulate(config_path: Path, scenario_name: str, seed: int | None, policy: str, warm_values: str | None,
             plot_path: Path | None, as_json: bool, strict: bool, write_config: Path | None, log_level: str) -> None:
    """Run a scenario on the simulated fleet and a virtual clock: hours of fleet time in seconds.

    The [provisioner] settings of the config (-c) drive the same planner and loop as `run`; the scenario file
    gives the fleet, the pools, the duration and any fault windows. Prints time to full utilization, task
    waits, launches, waste, double bookings, utilization and remote calls, next to the old tool's policy.
    """
    setup(log_level)
    settle_collector()
    if plot_path is not None:
        plot_check(plot_path)
        warm_values = warm_values or "0,auto"
    warms = _warms(warm_values) if warm_values else None
    try:
        settings = settings_table(config_path)
        scenario = load_scenario(scenario_name)
        if write_config is not None:
            state = Path("state") / scenario.name
            write_config.write_text(dumps(compose(settings, scenario, seed, state)), encoding="utf-8")
            click.echo(f"wrote {write_config}: run it with `provisioner run -c {write_config}`")
            return
        results: dict[str, Metrics] = {}
        loop_runs = []
        run_settings = None
        names = ["provisioner", "baseline"] if policy == "both" else [policy]
        for name in names:
            for warm in (warms if warms is not None and name == "provisioner" else [None]):
                label = name if warm is None else f"warm={warm}"
                bar, progress = _bar(f"{scenario.name}: {label}", scenario.duration)
                with bar:
                    if name == "baseline":
                        result = run_baseline(settings, scenario, seed, progress)
                    else:
                        result = run_provisioner(settings, scenario, seed, progress, warm)
                        loop_runs.append(result)
                results[label] = measure(result)
                run_settings = run_settings or result.settings
    except ScenarioError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_PROBLEMS)
    assert run_settings is not None
    theirs = results.get("baseline")
    ours = next((m for name, m in results.items() if name != "baseline"), None)
    mine = {name: m for name, m in results.items() if name != "baseline"}
    found = [replace(c, target=f"{name}: {c.target}") if len(mine) > 1 else c
             for name, m in mine.items() for c in checks(m, theirs, run_settings, scenario)]
    if as_json:
        click.echo(json.dumps({
            "scenario": scenario.name, "description": scenario.description,
            "settings": {"interval": run_settings.interval, "launch_interval": run_settings.launch_interval,
                         "max_launches_per_cycle": run_settings.max_launches_per_cycle},
            **{name: m.to_dict() for name, m in results.items()},
            "checks": [c.__dict__ for c in found],
        }, indent=2, default=_json_default))
    else:
        click.echo(f"scenario {scenario.name}: {scenario.description}")
        click.echo(f"{scenario.duration:g} s of fleet time, seed {(ours or theirs).seed}, "  # type: ignore[union-attr]
                   f"pacing {run_settings.launch_interval:g} s, cycle {run_settings.interval:g} s")
        if warms is not None:
            click.echo(render(columns(list(results.values()))))
        else:
            click.echo(render(table(ours, theirs) if ours else table(theirs, None)))  # type: ignore[arg-type]
        if found:
            click.echo(render_checks(found))
    if plot_path is not None and loop_runs:
        from ..plots.simulate import plot_runs

        plot_runs(loop_runs, [results[r.policy] for r in loop_runs], plot_path)
        click.echo(f"wrote {plot_path}", err=True)
    if strict and not all(c.ok for c in found):
        sys.exit(1)


def _warms(text: str) -> list[int | str]:
    """``0,4,auto`` -> [0, 4, "auto"]; a bad value is one line, exit 2."""
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if part == "auto" or (part.isdigit() and int(part) <= 10_000):
            out.append(part if part == "auto" else int(part))
        else:
            click.echo(f"--warm: {part!r} is neither a number of workers (0 to 10000) nor auto", err=True)
            sys.exit(EXIT_PROBLEMS)
    return out


def _json_default(value: object) -> object:
    if isinstance(value, float):
        return None
    return str(value)


__all__ = ["simulate", "Progress"]
