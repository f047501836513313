"""sd_notify: READY at start, WATCHDOG each cycle, STOPPING on a stop signal, and nothing outside systemd."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from provisioner import notify
from test_process import start, write_config


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


def test_the_daemon_says_ready_then_pings_each_cycle(tmp_path, listener):
    sock, path = listener
    proc = start(write_config(tmp_path, phones=4, pacing=0, interval=1), "--cycles", "2", NOTIFY_SOCKET=path,
                 WATCHDOG_USEC="1000000")  # the shortest cycle a config may ask: 1 s
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    messages = [sock.recv(4096).decode() for _ in range(3)]
    assert messages[0] == "READY=1\nSTATUS=1 pools"
    assert messages[1:] == [f"WATCHDOG=1\nSTATUS=cycle {n}" for n in (1, 2)]


def test_the_daemon_says_stopping_on_sigterm(tmp_path, listener):
    sock, path = listener
    proc = start(write_config(tmp_path, phones=4, pacing=0, interval=3600), NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    assert sock.recv(4096).startswith(b"READY=1")
    assert sock.recv(4096).startswith(b"WATCHDOG=1")  # the first cycle is done; now it sleeps an hour
    proc.send_signal(signal.SIGTERM)
    assert sock.recv(4096) == b"STOPPING=1"
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "shorter than two cycles" in err  # WATCHDOG_USEC of 1 s against a cycle of an hour
