"""One daemon, both clouds: a pinned Bitbar pool, a group Bitbar pool (``targeting = "group"``, the cloud picks
among the group's members) and a LambdaTest pool (simulated phones, the real hyperexecute launcher and a fake
CLI) in one config, run as ``provisioner run --once`` (the queues simulated, Bitbar a local fake).

A dry run renders every launch (the pinned run on the phone's one-device group, the group run on the pool's
group and naming no phone), masks every token and posts nothing. A real cycle posts one run to the pool's group,
records it with no phone, and the next cycle learns the phone from the run's device session."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from bb_support import ENVIRON as BB_ENVIRON, SECRETS as BB_SECRETS, TOKEN, FakeBitbar

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lambdatest" / "tests"))
from lt_support import ENVIRON as LT_ENVIRON, SECRETS as LT_SECRETS, FakeCli  # noqa: E402

PINNED_QUEUE = "proj-autophone/gecko-t-bitbar-gw-perf-p6"
GROUP_QUEUE = "proj-autophone/gecko-t-bitbar-gw-perf-a55"
LT_QUEUE = "proj-autophone/gecko-t-lambda-perf-a55"
MEMBERS = ("a55-33", "a55-34", "a55-35", "a55-52", "a55-57", "a55-58")  # bb_shapes' group a55-perf (id 603)
SECRETS = BB_SECRETS + LT_SECRETS
BB_LAUNCH = ('client_id = "project/autophone/gecko-t-bitbar-perf-a55", access_token_env = '
             '"gecko_t_bitbar_gw_perf_a55", docker_image_version = "20250304T123621"')


def bitbar_pool(name: str, queue: str, udids: tuple[str, ...], group: str = "") -> str:
    """A Bitbar pool's table: pinned, or with ``group`` the cloud picks among that group's members."""
    targeting = f'targeting = "group"\n' if group else ""
    device_group = f', device_group = "{group}"' if group else ""
    return f"""[pools.{name}]
queue = "{queue}"
queue_source = "sim"
device_provider = "bitbar"
launcher = "bitbar"
{targeting}udids = {json.dumps(list(udids))}
idle_timeout = 5400
launch = {{ {BB_LAUNCH}{device_group} }}
"""


def write_config(tmp_path: Path, url: str, cli: FakeCli) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f"""
[provisioner]
state_dir = "{tmp_path / 'state'}"
seed = 1
{bitbar_pool("bb-a55-perf", PINNED_QUEUE, ("pixel6-137",))}
{bitbar_pool("bb-a55-group", GROUP_QUEUE, MEMBERS, "a55-perf")}
[pools.lt-a55-perf]
queue = "{LT_QUEUE}"
queue_source = "sim"
device_provider = "sim"
launcher = "hyperexecute"
udids = ["SIM0000"]
launch = {{ client_id_env = "TC_CLIENT_A55", access_token_env = "TC_TOKEN_A55", allow_unpinned_downloads = true }}
[plugins.bitbar]
url = "{url}"
[plugins.hyperexecute]
cli = "{cli.path}"
[plugins.sim]
phones = 1
[plugins.sim.queues]
"{PINNED_QUEUE}" = {{ burst = 1 }}
"{GROUP_QUEUE}" = {{ burst = 1 }}
"{LT_QUEUE}" = {{ burst = 1 }}
""")
    return config


def provisioner(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(LT_ENVIRON, **BB_ENVIRON, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "provisioner", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def rendered_bodies(stderr: str) -> dict[str, dict]:
    """The JSON run bodies a dry run printed after ``POST .../runs``, by pool."""
    bodies = {}
    for match in re.finditer(r"POST \S+/api/v2/runs\n(\{\n.*?\n\})", stderr, re.S):
        body = json.loads(match.group(1))
        bodies[body["testRunName"].split(",")[1]] = body
    return bodies


def ledger(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    return sqlite3.connect(tmp_path / "state" / "ledger.sqlite3").execute(
        "SELECT pool, udid, state, job_id FROM launches ORDER BY pool").fetchall()


def test_check_network_accepts_the_config_of_both_clouds(tmp_path: Path) -> None:
    cli = FakeCli(tmp_path / "bin", tmp_path / "lock" / "hyperexecute-cli.lock")
    with FakeBitbar() as bitbar:
        done = provisioner("check", "--network", "-c", str(write_config(tmp_path, bitbar.url, cli)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok (3 pools" in done.stdout  # with --network: the group's members are the pool's udids, ids resolve
    assert bitbar.posted == []


def test_a_dry_run_renders_a_pinned_and_a_group_run_beside_the_lambdatest_job(tmp_path: Path) -> None:
    cli = FakeCli(tmp_path / "bin", tmp_path / "lock" / "hyperexecute-cli.lock")
    with FakeBitbar() as bitbar:
        done = provisioner("run", "-c", str(write_config(tmp_path, bitbar.url, cli)), "--once", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert bitbar.posted == [] and not cli.ran()
    bodies = rendered_bodies(done.stderr)
    assert sorted(bodies) == ["bb-a55-group", "bb-a55-perf"], done.stderr
    pinned, group = bodies["bb-a55-perf"], bodies["bb-a55-group"]
    assert pinned["testRunName"] == "provisioner,bb-a55-perf,pixel6-137"
    # a dry run looks no id up: the placeholders name the phone's own group and the pool's group
    assert pinned["deviceGroupId"] == "<id of group provisioner-pixel6-137>"
    assert group["testRunName"] == "provisioner,bb-a55-group,"  # names no phone: the third field is empty
    assert group["deviceGroupId"] == "<id of group a55-perf>"  # Bitbar picks among its members
    for body in (pinned, group):
        assert body["scheduler"] == "SINGLE"
        assert {"key": "TASKCLUSTER_ACCESS_TOKEN", "value": "***"} in body["testRunParameters"]
    assert "--labels provisioner,lt-a55-perf,SIM0000" in done.stderr  # the LambdaTest launch, pinned
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr
    assert not (tmp_path / "state" / "ledger.sqlite3").exists() or ledger(tmp_path) == []


def test_a_group_launch_goes_to_the_pools_group_and_learns_its_phone_from_the_run(tmp_path: Path) -> None:
    cli = FakeCli(tmp_path / "bin", tmp_path / "state" / "hyperexecute-cli.lock")
    with FakeBitbar() as bitbar:
        config = write_config(tmp_path, bitbar.url, cli)
        first = provisioner("run", "-c", str(config), "--once", "--log-level", "TRACE")
        assert first.returncode == 0, first.stderr
        by_pool = {body["testRunName"].split(",")[1]: body for body in bitbar.posted}
        assert sorted(by_pool) == ["bb-a55-group", "bb-a55-perf"]
        group = by_pool["bb-a55-group"]
        assert (group["deviceGroupId"], group["projectId"], group["scheduler"]) == (603, 502, "SINGLE")
        pinned = by_pool["bb-a55-perf"]
        assert (pinned["deviceGroupId"], pinned["projectId"], pinned["scheduler"]) == (605, 501, "SINGLE")
        assert {"key": "TASKCLUSTER_ACCESS_TOKEN", "value": TOKEN} in group["testRunParameters"]  # to Bitbar only
        rows = {row[0]: row for row in ledger(tmp_path)}
        group_run = rows["bb-a55-group"][3]
        assert rows["bb-a55-group"][1:3] == ("", "starting")  # the cloud picks: no phone yet
        assert rows["bb-a55-perf"][1:3] == ("pixel6-137", "starting")
        assert {rows["bb-a55-perf"][3], group_run} == {"9101", "9102"}  # the two runs the fake answered
        assert rows["lt-a55-perf"][1] == "SIM0000" and cli.ran()

        bitbar.place(int(group_run), "a55-33")  # Bitbar starts the run on a member
        second = provisioner("run", "-c", str(config), "--once", "--log-level", "TRACE")
    assert second.returncode == 0, second.stderr
    rows = {row[0]: row for row in ledger(tmp_path)}
    assert rows["bb-a55-group"][1] == "a55-33" and rows["bb-a55-group"][3] == group_run
    assert len([body for body in bitbar.posted if body["deviceGroupId"] == 603]) == 1  # not launched again
    for secret in SECRETS:
        assert secret not in first.stdout + first.stderr + second.stdout + second.stderr
