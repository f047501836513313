"""The daemon end to end with the Bitbar plugin as device provider and launcher (the queue simulated, Bitbar a
local fake): a dry run renders the run with the token masked and posts nothing; a real cycle posts one run to
the idle phone's own group and records it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from bb_support import ENVIRON, SECRETS, TOKEN, FakeBitbar

QUEUE = "proj-autophone/gecko-t-bitbar-gw-perf-a55"


def write_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f"""
[provisioner]
state_dir = "{tmp_path / 'state'}"
seed = 1
[pools.bb-a55-perf]
queue = "{QUEUE}"
queue_source = "sim"
device_provider = "bitbar"
launcher = "bitbar"
udids = ["pixel6-137"]
idle_timeout = 5400
[pools.bb-a55-perf.launch]
client_id = "project/autophone/gecko-t-bitbar-perf-a55"
access_token_env = "gecko_t_bitbar_gw_perf_a55"
docker_image_version = "20250304T123621"
[plugins.bitbar]
url = "{url}"
[plugins.sim]
phones = 1
[plugins.sim.queues]
"{QUEUE}" = {{ burst = 1 }}
""")
    return config


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(ENVIRON, PATH=os.environ.get("PATH", ""), PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "provisioner", "run", "-c", str(config), "--once", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_a_dry_run_renders_the_run_with_the_token_masked(tmp_path: Path) -> None:
    with FakeBitbar() as bitbar:
        done = run(write_config(tmp_path, bitbar.url), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert bitbar.posted == []
    assert f"POST {bitbar.url}/api/v2/runs" in done.stderr
    assert '"testRunName": "provisioner,bb-a55-perf,pixel6-137"' in done.stderr
    assert '"value": "***"' in done.stderr
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr


def test_a_cycle_posts_one_run_to_the_phones_group(tmp_path: Path) -> None:
    with FakeBitbar() as bitbar:
        done = run(write_config(tmp_path, bitbar.url), "--log-level", "TRACE")
    assert done.returncode == 0, done.stderr
    assert len(bitbar.posted) == 1
    body = bitbar.posted[0]
    assert (body["deviceGroupId"], body["projectId"], body["scheduler"]) == (605, 501, "SINGLE")
    assert {"key": "TASKCLUSTER_ACCESS_TOKEN", "value": TOKEN} in body["testRunParameters"]  # to Bitbar only
    rows = sqlite3.connect(tmp_path / "state" / "ledger.sqlite3").execute(
        "SELECT pool, udid, state, job_id FROM launches").fetchall()
    assert rows == [("bb-a55-perf", "pixel6-137", "starting", "9101")]
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr
