"""sd_notify: READY at start, WATCHDOG each cycle, STOPPING on a stop signal, and nothing outside systemd."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from provisioner import notify


@pytest.fixture
def listener(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(30)  # a bound on a broken test, never a wait for something to happen
    yield sock, str(path)
    sock.close()


def test_messages_reach_the_socket(listener):
    sock, path = listener
    env = {"NOTIFY_SOCKET": path}
    assert notify.ready("3 pools", env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=3 pools"
    assert notify.watchdog(environ=env)
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notify.stopping(env)
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_socket_names_are_understood():
    name = f"provisioner-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert notify.watchdog("cycle 1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1\nSTATUS=cycle 1"


def test_outside_systemd_nothing_happens():
    assert notify.ready(environ={}) is False


def test_a_dead_socket_is_reported_once_and_never_raises(tmp_path, log_lines, monkeypatch):
    monkeypatch.setattr(notify, "_failed_once", False)
    env = {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}
    assert notify.watchdog(environ=env) is False
    assert notify.watchdog(environ=env) is False
    assert sum("cannot notify systemd" in line for line in log_lines) == 1


def test_watchdog_period():
    assert notify.watchdog_seconds({"WATCHDOG_USEC": "300000000"}) == 300.0
    assert notify.watchdog_seconds({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": "1"}) is None
    assert notify.watchdog_seconds({}) is None


def _config(tmp_path: Path, interval: float) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(f"""
        [provisioner]
        interval = {interval}
        launch_interval = 0
        state_dir = "state"
        seed = 5
        [pools.perf]
        queue = "proj/perf"
        selector = {{ model = "A55" }}
        queue_source = "sim"
        device_provider = "sim"
        launcher = "sim"
        [plugins.sim]
        phones = 4
        models = ["A55"]
        [plugins.sim.queues]
        "proj/perf" = {{ burst = 2 }}
    """))
    return path


def _run(config: Path, socket_path: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PROVISIONER_PLUGINS="none", NOTIFY_SOCKET=socket_path, WATCHDOG_USEC="1000000")
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", "run", "-c", str(config), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def test_the_daemon_says_ready_then_pings_each_cycle(tmp_path, listener):
    sock, path = listener
    proc = _run(_config(tmp_path, 1), path, "--cycles", "2")  # the shortest cycle a config may ask: 1 s
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    messages = [sock.recv(4096).decode() for _ in range(3)]
    assert messages[0] == "READY=1\nSTATUS=1 pools"
    assert messages[1:] == [f"WATCHDOG=1\nSTATUS=cycle {n}" for n in (1, 2)]


def test_the_daemon_says_stopping_on_sigterm(tmp_path, listener):
    sock, path = listener
    proc = _run(_config(tmp_path, 3600), path)
    assert sock.recv(4096).startswith(b"READY=1")
    assert sock.recv(4096).startswith(b"WATCHDOG=1")  # the first cycle is done; now it sleeps an hour
    proc.send_signal(signal.SIGTERM)
    assert sock.recv(4096) == b"STOPPING=1"
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "shorter than two cycles" in err  # WATCHDOG_USEC of 1 s against a cycle of an hour
