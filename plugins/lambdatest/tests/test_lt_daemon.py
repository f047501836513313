"""The daemon end to end with the real launcher: `provisioner run --once` starts the (fake) hyperexecute CLI
for each planned launch, pinned to the planner's phone, with our labels, and records the job it printed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from lt_support import ENVIRON, LT_KEY, SECRETS, TC_TOKEN, FakeCli


def write_config(tmp_path: Path, state: Path, cli: FakeCli, tag: str) -> Path:
    """One pinned pool on the simulated queue and phones, launched through the real launcher and a fake CLI
    (allowing unpinned downloads: the shipped checksums.sha256 pins nothing yet, and launches are refused then)."""
    config = tmp_path / "c.toml"
    config.write_text(f"""
[provisioner]
state_dir = "{state}"
job_tag = "{tag}"
seed = 1
[pools.a55-perf]
queue = "proj-autophone/gecko-t-lambda-perf-a55"
udids = ["SIM0000"]
queue_source = "sim"
device_provider = "sim"
launcher = "hyperexecute"
launch = {{ client_id_env = "TC_CLIENT_A55", access_token_env = "TC_TOKEN_A55", allow_unpinned_downloads = true }}
[plugins.hyperexecute]
cli = "{cli.path}"
[plugins.sim]
phones = 1
[plugins.sim.queues]
"proj-autophone/gecko-t-lambda-perf-a55" = {{ burst = 1 }}
""")
    return config


def test_run_once_launches_through_the_cli_and_records_the_job(tmp_path: Path):
    state = tmp_path / "state"
    cli = FakeCli(tmp_path / "bin", state / "hyperexecute-cli.lock")
    config = write_config(tmp_path, state, cli, "tcdp")
    env = dict(ENVIRON, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "provisioner", "run", "-c", str(config), "--once", "--log-level", "TRACE"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    record = cli.record()
    argv = record["argv"]
    assert argv[argv.index("--labels") + 1] == "tcdp,a55-perf,SIM0000"
    assert json.loads(record["yaml"])["framework"]["args"]["fixedIP"] == "SIM0000"
    assert "launched job 0f8fad5b-d9cb-469f-a165-70867728950e for pool a55-perf on SIM0000" in done.stderr
    rows = sqlite3.connect(state / "ledger.sqlite3").execute("SELECT udid, state, job_id FROM launches").fetchall()
    assert rows == [("SIM0000", "starting", "0f8fad5b-d9cb-469f-a165-70867728950e")]
    for secret in SECRETS:  # nowhere in the daemon's output, its argv, or what it left behind readable
        assert secret not in done.stdout + done.stderr and secret not in " ".join(argv)
    leftovers = [p for p in state.rglob("*") if p.is_file() and p.suffix not in (".sqlite3", ".lock")]
    assert any(p.parent.parent.name == "jobs" for p in leftovers)  # the job directory's log stays
    assert not list(state.rglob("hyperexecute.yaml"))  # the rendered yaml (with the token) does not
    for path in leftovers:
        if "-wal" not in path.name and "-shm" not in path.name:
            text = path.read_text(errors="replace")
            assert LT_KEY not in text and TC_TOKEN not in text, path
            assert path.stat().st_mode & 0o077 == 0, path


def test_a_dry_run_shows_the_rendered_yaml_and_runner_file_with_secrets_masked(tmp_path: Path):
    state = tmp_path / "state"
    cli = FakeCli(tmp_path / "bin", tmp_path / "lock" / "hyperexecute-cli.lock")
    config = write_config(tmp_path, state, cli, "provisioner")
    env = dict(ENVIRON, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "provisioner", "run", "-c", str(config), "--once", "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not cli.ran()
    assert f"command: {cli.path} --no-track --disable-updates --labels provisioner,a55-perf,SIM0000" in done.stderr
    yaml_text = done.stderr.split("--- hyperexecute.yaml (secrets masked) ---\n")[1].split("\n--- ")[0]
    assert json.loads(yaml_text)["framework"]["args"]["fixedIP"] == "SIM0000"
    runner = json.loads(done.stderr.split("(secrets masked) ---\n")[2].split("\n20")[0])
    assert runner["provider"]["accessToken"] == "***" and runner["provider"]["workerID"] == "SIM0000"
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr
    assert not (state / "jobs").exists()


def test_start_ends_a_crashed_launch_before_the_first_cycle(tmp_path: Path):
    """A daemon killed mid-launch left its CLI running and the job directory (the rendered yaml holds a token):
    the next daemon ends the one and removes the other as it starts, before its first cycle, with no launch
    planned (a queue with no task): not at a first launch that may be hours away."""
    from provisioner import PluginContext
    from test_lt_jobdirs import hanging_cli, leftover_job

    state = tmp_path / "state"
    cli = FakeCli(tmp_path / "bin", state / "hyperexecute-cli.lock")
    config = write_config(tmp_path, state, cli, "tcdp")
    config.write_text(config.read_text().replace("burst = 1", "burst = 0"))
    (state / "jobs" / "K1").mkdir(parents=True)
    started: list[subprocess.Popen[bytes]] = []
    try:
        orphan = hanging_cli(cli, state / "jobs" / "K1", started)
        crashed = leftover_job(PluginContext(state_dir=state), "K1", orphan.pid, str(cli.path))
        env = dict(ENVIRON, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
        done = subprocess.run([sys.executable, "-m", "provisioner", "run", "-c", str(config), "--once"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert orphan.wait(timeout=10) == -15  # SIGTERM from the daemon; reaped here, its parent
        assert not crashed.exists()
        lines = done.stderr.splitlines()
        removed = next(i for i, line in enumerate(lines) if f"(process group {orphan.pid}) ended; directory removed" in line)
        first_cycle = next(i for i, line in enumerate(lines) if "cycle 1:" in line)
        assert removed < first_cycle
        assert "launching 0" in lines[first_cycle]
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, 9)
            process.wait()
