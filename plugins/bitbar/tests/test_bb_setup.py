"""``provisioner bitbar-setup``: shows what the pools need on the server; only ``--apply`` writes, and only
projects and one-phone groups; what it may not do is left to a person, named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provisioner.cli import cli

from bb_support import APIKEY

CONFIG = """
[provisioner]
state_dir = "state"

[pools.bb-a55-perf]
queue = "proj-autophone/gecko-t-bitbar-gw-perf-a55"
device_provider = "bitbar"
launcher = "bitbar"
udids = ["a55-33", "a55-35", "a55-52", "pixel6-137"]
idle_timeout = 5400
launch = { client_id = "project/autophone/gecko-t-bitbar-perf-a55", docker_image_version = "20250304T123621" }

[pools.bb-s24-perf]
queue = "proj-autophone/gecko-t-bitbar-gw-perf-s24"
device_provider = "bitbar"
launcher = "bitbar"
udid = "a55-57"
idle_timeout = 5400
launch = { client_id = "project/autophone/gecko-t-bitbar-perf-s24", docker_image_version = "20250304T123621" }

[pools.lt-a55]
queue = "proj-autophone/gecko-t-lambda-perf-a55"
udids = ["R5CXC1HZK0W"]
"""
SHOWN = [
    "needs a hand: pool bb-a55-perf: device group provisioner-a55-35 holds a55-35, a55-52, not only a55-35: fix it "
    "by hand",
    "needs a hand: pool bb-a55-perf: phone a55-52 is still in device group(s) a55-perf, provisioner-a55-35: remove it "
    "there first (from mbd's YAML, then restart mbd) so that one tool runs it",
]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


def setup(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["bitbar-setup", "-c", str(config), *args], env={"TESTDROID_APIKEY": APIKEY})


@pytest.mark.vcr("setup.yaml", allow_playback_repeats=True)
def test_without_apply_it_only_shows(config: Path, vcr: Any) -> None:
    result = setup(config)
    assert result.output.splitlines() == [
        SHOWN[0], SHOWN[1],
        "would create device group provisioner-pixel6-137 holding only pixel6-137 (device id 2010)",
        "would create project provisioner-bb-s24-perf (type APPIUM_ANDROID_SERVER_SIDE, archiving DAYS 7)",
        "needs a hand: pool bb-s24-perf: phone a55-57 is still in device group(s) a55-perf: remove it there first "
        "(from mbd's YAML, then restart mbd) so that one tool runs it",
        "(nothing changed: run again with --apply)",
    ]
    assert result.exit_code == 1  # some steps need a hand
    assert not any(vcr.requests[i].method == "POST" for i in vcr.play_counts)


@pytest.mark.vcr("setup.yaml", allow_playback_repeats=True)
def test_apply_creates_the_project_and_the_phone_group(config: Path, vcr: Any) -> None:
    result = setup(config, "--apply")
    lines = result.output.splitlines()
    assert "done: device group provisioner-pixel6-137: id 605" in lines
    assert "done: project provisioner-bb-s24-perf: id 503" in lines
    posted = [vcr.requests[i].path for i, n in vcr.play_counts.items() if n and vcr.requests[i].method == "POST"]
    assert sorted(posted) == sorted(["/api/v2/users/12345/device-groups", "/api/v2/device-groups/605/devices",
                                     "/api/v2/users/12345/projects", "/api/v2/users/12345/projects/503"])
    assert APIKEY not in result.output


def test_a_bad_config_is_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG + "\n[plugins.bitbar]\nurl = 3\n")
    result = setup(path)
    assert result.exit_code == 2 and "plugins.bitbar.url: must be a string" in result.output
