"""The importer of mozilla-bitbar-devicepool's config/lambdatest.yml, held to a copy of the real file
(tests/corpus/devicepool-lambdatest.yml, its source commit in its header), and the shipped config.toml's pools."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from provisioner import validate_options
from provisioner.cli import cli
from provisioner.config import load
from provisioner_lambdatest.devicepool import accepts, convert
from provisioner_lambdatest.options import LAUNCHER_OPTIONS, POOL_OPTIONS, PROVIDER_OPTIONS

from lt_support import REPO, FakeCli

CORPUS = Path(__file__).parent / "corpus" / "devicepool-lambdatest.yml"
PRODUCTION = yaml.safe_load(CORPUS.read_text())


def imported(tmp_path: Path) -> tuple[dict[str, Any], list[str], Path]:
    result = CliRunner().invoke(cli, ["import-devicepool", str(CORPUS)])
    assert result.exit_code == 0, result.output
    path = tmp_path / "config.toml"
    path.write_text(result.stdout)
    return tomllib.loads(result.stdout), result.stderr.splitlines(), path


def pools_of(table: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {name: (p["queue"], p.get("udids"), p.get("priority", 0), p.get("disabled", False))
            for name, p in table["pools"].items()}


def test_productions_file_becomes_a_config_our_loader_and_plugins_accept(tmp_path: Path):
    config, lines, path = imported(tmp_path)
    loaded, problems = load(path)
    assert problems == []
    for pool in loaded.pools:
        validate_options(pool.launch, POOL_OPTIONS, str(path), f"pools.{pool.name}.launch")
    validate_options(config["plugins"]["lambdatest"], PROVIDER_OPTIONS, str(path), "plugins.lambdatest")
    validate_options(config["plugins"]["hyperexecute"], LAUNCHER_OPTIONS, str(path), "plugins.hyperexecute")

    pools = pools_of(config)
    assert list(pools) == ["a55-perf", "p9-perf", "a55-alpha", "stab", "test-1"]  # a55-sheriff-bad has no project
    assert pools["a55-alpha"] == ("proj-autophone/gecko-t-lambda-alpha-a55",
                                  ["R5CXC1HZK0W", "R5CX23RTGGN", "R5CX23RTM7P", "R5CX23RT9MV"], 10, False)
    assert pools["p9-perf"][1:] == (["47160DLAQ003UB", "47241FDAQ0016Y", "47241FDAQ002C0"], 1, False)
    perf = pools["a55-perf"][1]
    assert len(perf) == len(PRODUCTION["device_groups"]["a55-perf"]) == 54
    assert "R5CX4089QNL" not in perf  # commented out in production's file
    assert config["provisioner"] == {"max_starting": 60}  # global.contract_device_count
    assert config["pools"]["test-1"]["launch"] == {"client_id_env": "TC_TEST_1_CLIENT_ID",
                                                  "access_token_env": "TC_TEST_1_ACCESS_TOKEN"}

    assert all(line.startswith(f"{CORPUS}: ") for line in lines)
    text = "\n".join(lines)
    assert "USER_SCRIPTS_VERSION (v9-disable-livevideo)" in text and "priority_group" in text
    assert "device_groups.a55-sheriff-bad: no project of that name (0 phones)" in text
    assert (f"{CORPUS}: projects.a55-perf: set TC_A55_PERF_CLIENT_ID to project/autophone/gecko-t-lambda-perf-a55 "
            f"and TC_A55_PERF_ACCESS_TOKEN to the token production reads from gecko_t_lambda_perf_a55") in text
    assert len(lines) == 8


def test_the_imported_config_passes_check_once_its_variables_are_set(tmp_path: Path, fake_cli: FakeCli):
    """The host command's output, checked as an operator would: the variables it names set, the CLI on PATH (the
    payload's checksums count as pinned here, as in every test but the ``unpinned`` ones: the shipped payload
    pins no worker yet, and ``check`` says so once per pool)."""
    config, _, path = imported(tmp_path)
    names = [p["launch"][key] for p in config["pools"].values() for key in ("client_id_env", "access_token_env")]
    env = {name: f"value-of-{name}" for name in names} | {"LT_USERNAME": "u", "LT_ACCESS_KEY": "k",
                                                          "PATH": str(fake_cli.path.parent)}
    unset = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert unset.exit_code != 0 and "TC_A55_PERF_ACCESS_TOKEN is not set" in unset.output
    result = CliRunner().invoke(cli, ["check", "-c", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "ok (5 pools" in result.output


def test_the_shipped_config_names_productions_pools(tmp_path: Path):
    config, _, _ = imported(tmp_path)
    shipped = tomllib.loads((REPO / "config.toml").read_text())
    assert pools_of(shipped) == pools_of(config)
    assert {n: p["launch"] for n, p in shipped["pools"].items()} == {n: p["launch"] for n, p in config["pools"].items()}


def project_file(**changes: Any) -> dict[str, Any]:
    doc = {"global": {"contract_device_count": 3},
           "projects": {"defaults": {"USER_SCRIPTS_VERSION": "v9", "TASKCLUSTER_CLIENT_ID": "tc-client-id-set-me",
                                     "TC_WORKER_TYPE": "tc-worker-type-set-me", "disabled": False, "priority": 1},
                        "one": {"TASKCLUSTER_CLIENT_ID": "project/autophone/one", "TC_WORKER_TYPE": "gecko-t-one"}},
           "device_groups": {"one": {"UDID1": None, "UDID2": None}}}
    for key, value in changes.items():
        section, _, name = key.partition("__")
        doc[section][name] = value
    return doc


def test_what_production_would_not_run_or_we_cannot_hold_is_a_line_each():
    result = convert(project_file(
        projects__two={"TC_WORKER_TYPE": "gecko-t-two", "TASKCLUSTER_CLIENT_ID": "project/autophone/two",
                       "disabled": True, "priority": 7, "colour": "red"},
        projects__three={"TASKCLUSTER_CLIENT_ID": "project/autophone/three"},  # the defaults' placeholder worker type
        projects__four={"TC_WORKER_TYPE": "gecko-t-four", "TASKCLUSTER_CLIENT_ID": "project/autophone/four"},
        device_groups__two="PHONE-A PHONE-B", device_groups__three=["X1"], device_groups__four=None,
        device_groups__one=["UDID1", "bad udid!", "UDID1"],
    ), "old.yml")
    config = tomllib.loads(result.toml)
    assert pools_of(config) == {"one": ("proj-autophone/gecko-t-one", ["UDID1"], 1, False),
                                "two": ("proj-autophone/gecko-t-two", ["PHONE-A", "PHONE-B"], 7, True)}
    text = "\n".join(result.not_carried)
    assert "projects.two.colour: unknown setting; not carried over" in text
    assert "projects.three: production never runs it (no TC_WORKER_TYPE)" in text
    assert "projects.four: production never runs it (no phones in device_groups)" in text
    assert "device_groups.one: 'bad udid!' is not a valid UDID" in text


@pytest.mark.parametrize("document, expected", [
    (PRODUCTION, True),
    ({"projects": {"defaults": {"additional_parameters": {"TC_WORKER_TYPE": "x"}},
                   "p": {"device_group_name": "g", "additional_parameters": {"TC_WORKER_TYPE": "x"}}},
      "device_groups": {"g": None}}, False),  # the Bitbar config.yml's shape
    ({"projects": {"p": {"TC_WORKER_TYPE": "x"}}}, False),  # no device groups
    (["projects"], False),
    (None, False),
])
def test_accepts_only_the_lambdatest_file(document: Any, expected: bool):
    assert accepts(document) is expected
