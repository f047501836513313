"""Scenario files: reading, generated pools, composing with settings, and the TOML written for `run`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from provisioner.config import load
from provisioner.simulate.scenario import ScenarioError, compose, find, load_scenario, settings_table
from provisioner.simulate.tomlout import dumps

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("burst", "slow-start", "shared", "shared-burst", "faults", "large", "busy", "busy-short-idle", "group")


def test_the_shipped_list_names_every_scenario_file():
    assert {p.stem for p in (ROOT / "scenarios").glob("*.toml")} - {"production"} == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_loads_and_composes_into_a_valid_config(name, tmp_path):
    scenario = load_scenario(name, (ROOT / "scenarios",))
    assert scenario.description and scenario.targets and scenario.duration > 0
    settings = settings_table(ROOT / "scenarios" / "production.toml")
    assert settings["launch_interval"] == 2  # the production pacing the targets are measured at
    path = tmp_path / "c.toml"
    path.write_text(dumps(compose(settings, scenario, 9, tmp_path / "state")))
    config, problems = load(path)
    assert problems == []
    assert config.settings.seed == 9 and config.plugin_options["sim"]["seed"] == 9
    assert {p.device_provider for p in config.pools} == {"sim"}


def test_generate_makes_pools_models_and_queues(write_config):
    path = write_config("""
        [scenario]
        duration = 60
        [scenario.generate]
        pools = 12
        phones_per_pool = 3
        per_hour = 2.5
        burst = 1
        [plugins.sim]
        seed = 4
    """, "gen.toml")
    scenario = load_scenario(str(path))
    assert scenario.name == "gen" and len(scenario.pools) == 12
    assert scenario.pools["pool-07"] == {"queue": "proj-sim/pool-07", "selector": {"model": "Model-07"}}
    assert scenario.sim["phones"] == 36 and len(scenario.sim["models"]) == 12
    assert scenario.sim["queues"]["proj-sim/pool-11"] == {"burst": 1, "per_hour": 2.5}


def test_compose_takes_the_scenario_seed_by_default_and_only_sim_roles():
    scenario = load_scenario("burst", (ROOT / "scenarios",))
    raw = compose({"interval": 10}, scenario, None, Path("/tmp/x"))
    assert raw["provisioner"] == {"interval": 10, "state_dir": "/tmp/x", "seed": 1}
    assert raw["defaults"] == {"queue_source": "sim", "device_provider": "sim", "launcher": "sim"}


def test_toml_written_reads_back_the_same():
    doc = {"a": {"s": 'quote " and \\ and é', "i": 3, "f": 0.5, "b": True, "l": [1, "x"], "t": {"k": {"n": [{"z": 1.0}]}}},
           "b": {"skip": None}}
    assert tomllib.loads(dumps(doc)) == {"a": doc["a"], "b": {}}
    with pytest.raises(ValueError):
        dumps({"a": {"x": float("inf")}})
    with pytest.raises(ValueError):
        dumps({"a": {"x": object()}})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[other]\n", "other: unknown table"),
        ("[scenario]\nspeed = 1\n", "scenario.speed: unknown key"),
        ("[scenario]\nduration = 0\n", "scenario.duration: must be a positive number"),
        ("[scenario]\ntargets = 'burst'\n", "scenario.targets"),
        ("[plugins.lambdatest]\n", "plugins.lambdatest: a scenario runs on the simulated fleet only"),
        ("[scenario]\nduration = 5\n", "pools: no pool is defined"),
        ("[scenario.generate]\npools = 0\n", "scenario.generate.pools: must be a positive integer"),
        ("[scenario.generate]\nmany = 1\n", "scenario.generate.many: unknown key"),
        ("pools = 3\n", "pools: must be a table"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_scenarios_name_file_and_key(write_config, text, message):
    path = write_config(text, "bad.toml")
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[")) as err:
        load_scenario(str(path))
    assert str(path) in str(err.value)


def test_find_by_name_path_or_a_clear_error(tmp_path, monkeypatch):
    assert find("burst", (ROOT / "scenarios",)) == ROOT / "scenarios" / "burst.toml"
    monkeypatch.chdir(ROOT)
    assert find("faults").name == "faults.toml"
    with pytest.raises(ScenarioError, match="no scenario named 'nope' .*burst"):
        find("nope", (ROOT / "scenarios",))
    with pytest.raises(ScenarioError, match="no such scenario file"):
        find(str(tmp_path / "gone.toml"))


def test_settings_table_takes_only_the_provisioner_table(write_config):
    path = write_config("[provisioner]\ninterval = 5\n[pools.x]\nqueue = 'a/b'\n")
    assert settings_table(path) == {"interval": 5}
    with pytest.raises(ScenarioError, match="provisioner.speed: unknown key"):
        settings_table(write_config("[provisioner]\nspeed = 5\n", "b.toml"))
    with pytest.raises(ScenarioError, match="no such file"):
        settings_table(Path("/nonexistent/c.toml"))
