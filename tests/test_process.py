"""The daemon as a process: signals, and a SIGKILL mid-cycle that loses nothing.

These tests never sleep to wait: they block on the daemon's own log lines.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_plugins import make_dist

HANG_PLUGIN = '''
import sys, threading
from provisioner import hookimpl, RoleSpec

class Hang:
    def __init__(self, options, context):
        pass
    def launch(self, request):
        print("SUBMITTING", request.udid, flush=True)
        threading.Event().wait()  # a submission that never returns

@hookimpl
def provisioner_job_launchers():
    yield RoleSpec("hang", Hang)
'''


def write_config(tmp_path: Path, launcher: str = "sim", phones: int = 12, pacing: float = 0.2,
                 interval: float = 60) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(f"""
        [provisioner]
        interval = {interval}
        launch_interval = {pacing}
        launch_concurrency = 1
        state_dir = "state"
        seed = 5
        [pools.perf]
        queue = "proj/perf"
        selector = {{ model = "A55" }}
        queue_source = "sim"
        device_provider = "sim"
        launcher = "{launcher}"
        [plugins.sim]
        phones = {phones}
        models = ["A55"]
        list_lag_seconds = 600
        [plugins.sim.queues]
        "proj/perf" = {{ burst = {phones} }}
    """))
    return path


def start(config: Path, *args: str, pythonpath: Path | None = None, plugin: str = "hang", **env: str) -> subprocess.Popen:
    """``provisioner run -c config`` in a child process: the third-party plugin ``plugin`` from ``pythonpath`` (none
    without one), ``env`` added to the environment; stdin a pipe (a plugin may read it)."""
    environ = dict(os.environ, PROVISIONER_PLUGINS="none" if pythonpath is None else plugin, **env)
    if pythonpath is not None:
        environ["PYTHONPATH"] = str(pythonpath)
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", "run", "-c", str(config), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
    )


def read_until(stream, needle: str, count: int = 1) -> list[str]:
    seen, found = [], 0
    for line in stream:
        seen.append(line)
        if needle in line:
            found += 1
            if found == count:
                return seen
    raise AssertionError(f"{needle!r} never came; got:\n{''.join(seen)}")


def launched(lines: list[str]) -> dict[str, str]:
    """job id -> phone, from 'launched job <id> for pool <p> on <udid>' lines."""
    out = {}
    for line in lines:
        if "launched job " in line:
            words = line.split("launched job ", 1)[1].split()
            out[words[0]] = words[5]
    return out


def test_sigkill_mid_cycle_loses_nothing_and_books_no_phone_twice(tmp_path: Path):
    config = write_config(tmp_path)
    first = start(config)
    lines = read_until(first.stderr, "launched job ", count=3)
    first.kill()
    lines += first.stderr.read().splitlines()
    first.wait(timeout=30)
    jobs = launched(lines)
    assert len(jobs) >= 3

    db = sqlite3.connect(tmp_path / "state" / "ledger.sqlite3")
    rows = db.execute("SELECT job_id, udid, state FROM launches").fetchall()
    recorded = {job: (udid, state) for job, udid, state in rows if job}
    for job, udid in jobs.items():  # every submission that went through is in the ledger
        assert recorded[job] == (udid, "starting")
    in_flight = {udid for _, udid, state in rows if state in ("starting", "submitting")}
    db.close()

    # Restart on a fresh simulated cloud whose device list says every phone is idle.
    second = start(config, "--once")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "launches still in flight loaded back" in err
    again = launched(err.splitlines())
    assert again and not set(again.values()) & in_flight
    assert len(set(again.values())) == len(again)


@pytest.fixture
def hang_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "hangplug", "hangplug", HANG_PLUGIN, "hang")
    return site


def test_sigterm_stops_cleanly(tmp_path: Path):
    proc = start(write_config(tmp_path, pacing=30))
    read_until(proc.stderr, "pool perf:")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "SIGTERM: stopping" in err and "provisioner stopped after 1 cycles" in err
    db = sqlite3.connect(tmp_path / "state" / "ledger.sqlite3")
    states = {s for (s,) in db.execute("SELECT state FROM launches")}
    assert states <= {"starting", "cancelled"} and "cancelled" in states  # queued ones were not submitted


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGUSR2])
def test_first_signal_waits_for_the_submission_third_exits_at_once(tmp_path: Path, hang_site: Path, sig):
    proc = start(write_config(tmp_path, launcher="hang"), pythonpath=hang_site)
    read_until(proc.stdout, "SUBMITTING")
    proc.send_signal(sig)
    read_until(proc.stderr, "stopping: no new launches")
    assert proc.poll() is None  # still waiting for the submission in flight
    proc.send_signal(sig)
    read_until(proc.stderr, "one more signal exits at once")
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode == 128 + sig


def test_one_daemon_per_state_directory_and_its_files_are_private(tmp_path: Path):
    config = write_config(tmp_path, pacing=30)
    first = start(config)
    try:
        read_until(first.stderr, "pool perf:")
        second = start(config, "--once")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2
        assert err.strip().splitlines()[-1] == f"{tmp_path / 'state'}: another provisioner is running with this state directory"
        assert (tmp_path / "state" / "ledger.sqlite3").stat().st_mode & 0o077 == 0
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0
