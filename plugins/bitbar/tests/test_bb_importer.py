"""The importer for mbd's Bitbar file: ``convert()`` on a trimmed copy of the real ``config-v3-server.yml`` gives
a config our loader accepts with the plugins installed, and one line per setting it does not carry over."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provisioner_bitbar.importer import accepts, convert

REAL = Path(__file__).parent / "data" / "config-v3-server.yml"
TOKENS = {"gecko_t_bitbar_gw_perf_p6": "p6-token-0123456789", "gecko_t_bitbar_gw_perf_a55": "a55-token-0123456789",
          "gecko_t_bitbar_gw_perf_s24": "s24-token-0123456789", "TESTDROID_APIKEY": "key-0123456789abcdefghij"}

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture
def real() -> dict:
    return yaml.safe_load(REAL.read_text())


def test_it_takes_mbds_bitbar_file_and_not_its_lambdatest_file(real: dict) -> None:
    assert accepts(real)
    lambdatest = {"global": {"contract_device_count": 60}, "projects": {"a55-perf": {"TC_WORKER_TYPE": "x"}}}
    assert not accepts(lambdatest) and not accepts([]) and not accepts({"projects": {}, "device_groups": {}})


def test_worker_projects_become_group_pools_on_mbds_groups(real: dict) -> None:
    config = tomllib.loads(convert(real, "config-v3-server.yml").toml)
    assert sorted(config["pools"]) == ["mozilla-gw-perftest-a55", "mozilla-gw-perftest-p6", "mozilla-gw-perftest-s24"]
    a55 = config["pools"]["mozilla-gw-perftest-a55"]
    assert a55["queue"] == "proj-autophone/gecko-t-bitbar-gw-perf-a55"
    assert a55["udids"] == ["a55-33", "a55-34", "a55-35", "a55-52", "a55-57", "a55-58"]
    assert (a55["device_provider"], a55["launcher"], a55["idle_timeout"]) == ("bitbar", "bitbar", 5400)
    assert a55["targeting"] == "group"  # as mbd runs in production: Bitbar picks among the group's members
    assert a55["launch"] == {
        "client_id": "project/autophone/gecko-t-bitbar-perf-a55", "device_group": "a55-perf",
        "access_token_env": "gecko_t_bitbar_gw_perf_a55",  # mbd: the worker type with '_' for '-'
        "docker_image_version": "20250304T123621", "worker_conf": "gecko-t-ap",
        "project_type": "APPIUM_ANDROID_SERVER_SIDE", "application_file": "v3-testdroid-sample-app.apk",
        "test_file": "v3-empty-test.zip", "timeout": 0, "archiving_strategy": "DAYS", "archiving_item_count": 7,
        "framework": "mozilla-usb",
    }
    assert config["plugins"]["bitbar"] == {"url": "https://mozilla-v3.bitbar.com", "apikey_env": "TESTDROID_APIKEY"}
    assert config["provisioner"]["jobs_lookback_seconds"] >= 5400 * 2


def test_one_line_per_setting_not_carried(real: dict) -> None:
    lost = convert(real, "mbd.yml").not_carried
    assert "devicepool_config.jobs_to_start_algorithm v3: the host's planner decides" in lost
    for project in ("mozilla-gw-test-1", "mozilla-gw-test-2", "mozilla-gw-test-3"):
        assert any(line.startswith(f"projects.{project}: device group") and "names no phone" in line
                   for line in lost)
    for project in ("p6", "a55", "s24"):
        mine = [line for line in lost if line.startswith(f"projects.mozilla-gw-perftest-{project}:")]
        assert [line.split(": ")[1].split(" ")[0] for line in mine] == ["device_model", "description", "the"]
    assert ("projects.mozilla-gw-perftest-a55: the project itself: runs go to a new project "
            "<job_tag>-mozilla-gw-perftest-a55 (bitbar-setup --apply makes it) on mbd's device group a55-perf, where "
            'Bitbar picks the phone as for mbd (targeting = "group": a phone the host quarantines or holds may still '
            "be picked)") in lost
    assert not any("mbd.yml" in line for line in lost)  # the host's command names the file
    assert all("\n" not in line for line in lost)


def test_odd_settings_are_named(real: dict) -> None:
    real["projects"]["mozilla-gw-perftest-a55"] |= {"scheduler": "PARALLEL", "os_type": "IOS", "colour": "red"}
    real["projects"]["mozilla-gw-perftest-a55"]["additional_parameters"]["EXTRA_FLAG"] = "1"
    real["device_groups"]["s24-perf"]["a55-33"] = None  # a phone in two groups
    result = convert(real, "mbd.yml")
    lost = "\n".join(result.not_carried)
    assert "scheduler PARALLEL: every run is SINGLE" in lost and "os_type IOS" in lost
    assert "colour: not known to the importer" in lost
    assert "phone a55-33 is already pool mozilla-gw-perftest-a55's; left out" in lost
    assert tomllib.loads(result.toml)["pools"]["mozilla-gw-perftest-a55"]["launch"]["env"] == {"EXTRA_FLAG": "1"}


def test_the_host_command_prints_a_config_that_check_accepts_once_its_variables_are_set(tmp_path: Path) -> None:
    from provisioner.cli import cli

    imported = CliRunner().invoke(cli, ["import-devicepool", str(REAL)])
    assert imported.exit_code == 0, imported.output
    assert imported.stderr.splitlines()[0] == (f"{REAL}: devicepool_config.jobs_to_start_algorithm v3: the host's "
                                               "planner decides")  # the file named once
    path = tmp_path / "config.toml"
    path.write_text(imported.stdout)
    unset = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert unset.exit_code != 0 and "gecko_t_bitbar_gw_perf_a55 is not set" in unset.output
    result = CliRunner().invoke(cli, ["check", "-c", str(path)], env=TOKENS)
    assert result.exit_code == 0, result.output
    assert "ok (3 pools, 20 phones" in result.output


def test_provisioner_plugins_lists_bitbar() -> None:
    import json
    import subprocess

    done = subprocess.run([sys.executable, "-m", "provisioner", "plugins", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    bitbar = next(p for p in json.loads(done.stdout)["plugins"] if p["name"] == "bitbar")
    assert bitbar["distribution"] == "provisioner-bitbar" and not bitbar.get("error")
    assert bitbar["roles"] == {"device_provider": ["bitbar"], "launcher": ["bitbar"]}
    assert {"commands", "importers"} <= set(bitbar["kinds"])  # bitbar-setup, devicepool-bitbar
    table = subprocess.run([sys.executable, "-m", "provisioner", "plugins"], capture_output=True, text=True,
                           timeout=120).stdout
    assert [line.split()[-1] for line in table.splitlines() if line.startswith("bitbar ")] == ["ok"]
