"""Scenario files, and how one becomes a config the real loop runs.

A scenario is a TOML file with the parts of a config that describe the world, plus a ``[scenario]`` table::

    [scenario]
    description = "60 tasks at once on 60 idle phones"
    duration = 1800             # seconds of fleet time to simulate
    targets = ["burst"]         # which targets the report checks (see report.TARGETS)

    [pools.perf]                # pools: queue_source, device_provider and launcher default to "sim"
    queue = "proj/perf"
    selector = { model = "Galaxy A55 5G" }

    [plugins.sim]               # the fleet, its queues and any fault windows
    phones = 60
    queues = { "proj/perf" = { burst = 60 } }

    [scenario.generate]         # optional: many pools at once, one model and one queue each
    pools = 200
    phones_per_pool = 25
    per_hour = 3.0

The ``[provisioner]`` settings (pacing, caps, cycle) come from the config given with ``-c``, never from the
scenario, so one scenario is measured under whatever settings production runs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SETTINGS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SIM_ROLES = {"queue_source": "sim", "device_provider": "sim", "launcher": "sim"}
SCENARIO_KEYS = {"description", "duration", "targets", "generate"}
GENERATE_KEYS = {"pools", "phones_per_pool", "per_hour", "burst", "queue_prefix", "model_prefix"}
SCENARIO_DIR = "scenarios"


class ScenarioError(Exception):
    """A scenario or settings file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    duration: float
    targets: tuple[str, ...]
    pools: dict[str, dict[str, Any]]
    defaults: dict[str, Any]
    sim: dict[str, Any]  # the [plugins.sim] table


def find(name_or_path: str, search: tuple[Path, ...] | None = None) -> Path:
    """A scenario by path, or by name in ./scenarios/ or in the source tree's scenarios/."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise ScenarioError(f"{path}: no such scenario file")
        return path
    dirs = search if search is not None else (Path.cwd() / SCENARIO_DIR, Path(__file__).resolve().parents[3] / SCENARIO_DIR)
    for folder in dirs:
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.toml") if p.stem != "production"})
    raise ScenarioError(f"no scenario named {name_or_path!r} (known: {', '.join(known) or 'none'}; or give a path)")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None


def load_scenario(name_or_path: str, search: tuple[Path, ...] | None = None) -> Scenario:
    path = find(name_or_path, search)
    raw = read_toml(path)
    where = str(path)
    for key in raw:
        if key not in ("scenario", "pools", "defaults", "plugins"):
            raise ScenarioError(f"{where}: {key}: unknown table (known: scenario, pools, defaults, plugins)")
    meta = _table(raw.get("scenario", {}), f"{where}: scenario")
    for key in meta:
        if key not in SCENARIO_KEYS:
            raise ScenarioError(f"{where}: scenario.{key}: unknown key (known: {', '.join(sorted(SCENARIO_KEYS))})")
    duration = meta.get("duration", 3600)
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or duration <= 0:
        raise ScenarioError(f"{where}: scenario.duration: must be a positive number of seconds, not {duration!r}")
    targets = meta.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ScenarioError(f"{where}: scenario.targets: must be an array of target names")
    plugins = _table(raw.get("plugins", {}), f"{where}: plugins")
    unknown = sorted(set(plugins) - {"sim"})
    if unknown:
        raise ScenarioError(f"{where}: plugins.{unknown[0]}: a scenario runs on the simulated fleet only ([plugins.sim])")
    sim = dict(_table(plugins.get("sim", {}), f"{where}: plugins.sim"))
    pools = {name: dict(_table(t, f"{where}: pools.{name}")) for name, t in _table(raw.get("pools", {}), f"{where}: pools").items()}
    if "generate" in meta:
        _generate(_table(meta["generate"], f"{where}: scenario.generate"), pools, sim, where)
    if not pools:
        raise ScenarioError(f"{where}: pools: no pool is defined (give [pools.<name>] or [scenario.generate])")
    return Scenario(
        name=path.stem, path=path, description=str(meta.get("description", "")), duration=float(duration),
        targets=tuple(targets), pools=pools, defaults=dict(_table(raw.get("defaults", {}), f"{where}: defaults")),
        sim=sim,
    )


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where}: must be a table, not {type(value).__name__}")
    return value


def _generate(gen: Mapping[str, Any], pools: dict[str, dict[str, Any]], sim: dict[str, Any], where: str) -> None:
    """Many pools, each with its own model of phones and its own queue: the fleet grows to fit them."""
    for key in gen:
        if key not in GENERATE_KEYS:
            raise ScenarioError(f"{where}: scenario.generate.{key}: unknown key (known: {', '.join(sorted(GENERATE_KEYS))})")
    n, per_pool = gen.get("pools", 0), gen.get("phones_per_pool", 1)
    for key, value in (("pools", n), ("phones_per_pool", per_pool)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ScenarioError(f"{where}: scenario.generate.{key}: must be a positive integer, not {value!r}")
    width = len(str(n - 1))
    models = [f"{gen.get('model_prefix', 'Model-')}{i:0{width}d}" for i in range(n)]
    queues = dict(sim.get("queues", {}))
    for i, model in enumerate(models):
        queue = f"{gen.get('queue_prefix', 'proj-sim/pool-')}{i:0{width}d}"
        pools[f"pool-{i:0{width}d}"] = {"queue": queue, "selector": {"model": model}}
        queues[queue] = {"burst": gen.get("burst", 0), "per_hour": gen.get("per_hour", 0.0)}
    sim["models"] = models  # phone i gets model i % n: phones_per_pool phones each
    sim["os_versions"] = ["14"]
    sim["phones"] = n * per_pool
    sim["queues"] = queues


def settings_table(config_path: Path) -> dict[str, Any]:
    """The ``[provisioner]`` table of a config file (the rest of it is not used by a simulation)."""
    raw = read_toml(config_path)
    table = raw.get("provisioner", {})
    if not isinstance(table, Mapping):
        raise ScenarioError(f"{config_path}: provisioner: must be a table")
    unknown = sorted(set(table) - set(SETTINGS))
    if unknown:
        raise ScenarioError(f"{config_path}: provisioner.{unknown[0]}: unknown key")
    return dict(table)


def compose(
    settings: Mapping[str, Any], scenario: Scenario, seed: int | None, state_dir: Path, warm: int | str | None = None,
) -> dict[str, Any]:
    """The full config (as TOML tables) that runs ``scenario`` under ``settings``; one seed drives both the
    fleet and the planner (``seed``, else the scenario's ``[plugins.sim] seed``, else 0). ``warm`` (a number or
    "auto") overrides every pool's ``warm``."""
    sim = dict(scenario.sim)
    if seed is None:
        seed = sim.get("seed", 0) if isinstance(sim.get("seed", 0), int) else 0
    sim["seed"] = seed
    provisioner = {**settings, "state_dir": str(state_dir), "seed": seed}
    return {
        "provisioner": provisioner,
        "defaults": {**SIM_ROLES, **scenario.defaults},
        "pools": scenario.pools if warm is None else {n: {**p, "warm": warm} for n, p in scenario.pools.items()},
        "plugins": {"sim": sim},
    }
