"""Stop signals wherever the kernel delivers them, SIGHUP like SIGTERM. Blocks on the daemon's lines, never sleeps."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
from test_plugins import make_dist
from test_process import read_until, start, write_config

# A launcher whose submission (on a worker thread) hangs, and on each line it reads sends the signal the line
# names to its own thread: the kernel delivers it to that thread, not to the main one. "JOINING" waits until the
# main thread is blocked joining the submission threads (where Python runs no signal handler) and says so.
SELF_KILL_PLUGIN = '''
import signal, sys, threading, time
from provisioner import hookimpl, RoleSpec

def main_is_joining():
    frame = sys._current_frames()[threading.main_thread().ident]
    while frame is not None:
        if frame.f_code.co_name in ("join", "shutdown"):
            return True
        frame = frame.f_back
    return False

class SelfKill:
    def __init__(self, options, context):
        pass
    def launch(self, request):
        print("SUBMITTING on", threading.current_thread().name, flush=True)
        for line in sys.stdin:
            if line.strip() == "JOINING":
                while not main_is_joining():
                    time.sleep(0.01)
                print("MAIN JOINING", flush=True)
                continue
            signal.pthread_kill(threading.get_ident(), getattr(signal, line.strip()))
            print("SENT", line.strip(), flush=True)
        threading.Event().wait()

@hookimpl
def provisioner_job_launchers():
    yield RoleSpec("hang", SelfKill)
'''


@pytest.fixture
def self_kill_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "selfkill", "selfkill", SELF_KILL_PLUGIN)
    return site


def test_signals_delivered_to_a_submission_thread_stop_and_the_third_exits_at_once(tmp_path: Path, self_kill_site):
    proc = start(write_config(tmp_path, launcher="hang"), pythonpath=self_kill_site, plugin="selfkill")
    guard = threading.Timer(60, proc.kill)  # a daemon that never reacts fails the test (EOF), never hangs it
    guard.start()
    try:
        assert "on submit" in read_until(proc.stdout, "SUBMITTING")[-1]  # a worker thread, not MainThread
        read_until(proc.stderr, "pool perf:")  # the cycle is over: the main thread waits for the next one

        def deliver(sig: str, line: str, answer: bool = True) -> None:
            proc.stdin.write(sig + "\n")
            proc.stdin.flush()
            if answer:
                read_until(proc.stdout, "MAIN JOINING" if sig == "JOINING" else f"SENT {sig}")
            if line:
                read_until(proc.stderr, line)

        deliver("SIGTERM", "SIGTERM: stopping: no new launches")
        deliver("JOINING", "")  # the main thread now waits for the hung submission, deaf to signals
        deliver("SIGHUP", "SIGHUP: still stopping; one more signal exits at once")
        assert proc.poll() is None  # still waiting for the submission in flight
        deliver("SIGTERM", "SIGTERM: exiting at once", answer=False)  # it may exit before the plugin says SENT
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_sighup_stops_cleanly_like_sigterm(tmp_path: Path):
    proc = start(write_config(tmp_path, pacing=30))
    read_until(proc.stderr, "pool perf:")
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "SIGHUP: stopping" in err and "provisioner stopped after 1 cycles" in err
