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


def test_worker_projects_become_pinned_pools(real: dict) -> None:
    config = tomllib.loads(convert(real, "config-v3-server.yml").toml)
    assert sorted(config["pools"]) == ["mozilla-gw-perftest-a55", "mozilla-gw-perftest-p6", "mozilla-gw-perftest-s24"]
    a55 = config["pools"]["mozilla-gw-perftest-a55"]
    assert a55["queue"] == "proj-autophone/gecko-t-bitbar-gw-perf-a55"
    assert a55["udids"] == ["a55-33", "a55-34", "a55-35", "a55-52", "a55-57", "a55-58"]
    assert (a55["device_provider"], a55["launcher"], a55["idle_timeout"]) == ("bitbar", "bitbar", 5400)
    assert a55["launch"] == {
        "client_id": "project/autophone/gecko-t-bitbar-perf-a55",
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
    assert "mbd.yml: devicepool_config.jobs_to_start_algorithm v3: the host's planner decides" in lost
    for project in ("mozilla-gw-test-1", "mozilla-gw-test-2", "mozilla-gw-test-3"):
        assert any(line.startswith(f"mbd.yml: projects.{project}: device group") and "names no phone" in line
                   for line in lost)
    for project in ("p6", "a55", "s24"):
        mine = [line for line in lost if line.startswith(f"mbd.yml: projects.mozilla-gw-perftest-{project}:")]
        assert [line.split(": ")[2].split(" ")[0] for line in mine] == ["device_model", "description", "device"]
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


def test_the_result_loads_with_the_plugins_installed(real: dict, tmp_path: Path) -> None:
    from provisioner.cli import cli

    path = tmp_path / "config.toml"
    path.write_text(convert(real, str(REAL)).toml)
    result = CliRunner().invoke(cli, ["check", "-c", str(path)], env=TOKENS)
    assert result.exit_code == 0, result.output
    assert "ok (3 pools, 20 phones" in result.output
