"""What a killed launcher leaves, and the start of the next one: orphaned CLIs ended (never a recycled pid) and
their job directories removed, other secret files deleted, CLI logs redacted; no sweep follows a symbolic link."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner import PluginContext
from provisioner_lambdatest import jobdirs
from provisioner_lambdatest.jobdirs import CLI_OWN_LOG, LOG_NAME, PID_FILE, record_cli

from lt_support import LT_KEY, TC_TOKEN, FakeCli
from test_lt_launcher import job_dir, make_launcher, make_request

OTHER_TOKEN = "tc-other-pool-token-0987"  # the token of another pool, named only in the killed job's record


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; whatever is left is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def hanging_cli(fake: FakeCli, directory: Path, processes: list[subprocess.Popen[bytes]],
                mode: str = "hang") -> subprocess.Popen[bytes]:
    """The fake CLI, hanging in its own session in ``directory``, as a killed launcher leaves it."""
    fake.mode = mode
    (directory / "hyperexecute.yaml").write_text("{}")  # the fake reads its config before it hangs
    process = subprocess.Popen([str(fake.path), "--no-track", "--config", str(directory / "hyperexecute.yaml")],
                               cwd=directory, stdout=subprocess.PIPE, start_new_session=True)
    processes.append(process)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"  # its signal handling is set
    fake.mode = "ok"
    return process


def leftover_job(context: PluginContext, name: str, pid: int, cli: str, owner_start: str = "0") -> Path:
    """A job directory as a launcher killed mid-launch leaves it: yaml, unredacted logs, ``cli.pid``.

    ``owner_start`` "0": the recorded launcher's pid is this process's, but its start time is not: the launcher
    is gone (its pid recycled)."""
    directory = context.state_dir / "jobs" / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hyperexecute.yaml").write_text(json.dumps({"env": {"TASKCLUSTER_ACCESS_TOKEN": OTHER_TOKEN}}))
    (directory / LOG_NAME).write_text(f"uploading with {LT_KEY}\ntoken {OTHER_TOKEN}\n")
    (directory / CLI_OWN_LOG).write_text(f"auth {LT_KEY} {OTHER_TOKEN} {TC_TOKEN}\n")
    record_cli(directory, pid, cli, ["LT_ACCESS_KEY", "TC_TOKEN_OTHER"])
    if owner_start != "keep":
        record = json.loads((directory / PID_FILE).read_text())
        (directory / PID_FILE).write_text(json.dumps({**record, "owner_start": owner_start}))
    return directory


def test_start_ends_orphaned_clis_and_removes_their_job_directories(
    context: PluginContext, fake_cli: FakeCli, processes: list[subprocess.Popen[bytes]], logs: list[str]
) -> None:
    context.environ["TC_TOKEN_OTHER"] = OTHER_TOKEN  # type: ignore[index]
    (context.state_dir / "jobs" / "K1").mkdir(parents=True)
    orphan = hanging_cli(fake_cli, context.state_dir / "jobs" / "K1", processes)
    killed = leftover_job(context, "K1", orphan.pid, str(fake_cli.path))
    # a recorded pid now held by another program: never killed
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    processes.append(decoy)
    recycled = leftover_job(context, "K2", decoy.pid, str(fake_cli.path))
    # a job of a launcher that still runs (the recorded owner is alive, start time and all): left alone
    live = leftover_job(context, "K3", decoy.pid, str(fake_cli.path), owner_start="keep")

    ended = leftover_job(context, "K5", decoy.pid, str(fake_cli.path))  # a launch that ended: no record left
    (ended / PID_FILE).unlink()

    launcher = make_launcher(context, fake_cli)  # the factory touches nothing; neither does check
    launcher.check([], network=False)
    assert orphan.poll() is None and (killed / "hyperexecute.yaml").exists()

    launcher.start()  # what the daemon does before its first cycle
    assert orphan.poll() == -signal.SIGTERM  # ended (a zombie until reaped here), not left running
    assert decoy.poll() is None  # the recycled pid's new owner lives on
    assert not killed.exists() and not recycled.exists()
    assert not (ended / "hyperexecute.yaml").exists()
    for log in (LOG_NAME, CLI_OWN_LOG):
        text = (ended / log).read_text()
        assert "***" in text and LT_KEY not in text  # (a pool's token: by the host's secrets, in the daemon)
    assert (live / "hyperexecute.yaml").exists() and (live / PID_FILE).exists()
    assert LT_KEY in (live / LOG_NAME).read_text()
    assert sum(f"(process group {orphan.pid}) ended" in line for line in logs) == 1
    assert sum(f"(process group {decoy.pid}) was not running" in line for line in logs) == 1
    assert launcher.launch(make_request()).ok
    assert not (job_dir(context) / PID_FILE).exists()  # this launch's own record went with its CLI

    # only once per process: a later launch does not sweep again
    again = leftover_job(context, "K4", decoy.pid, str(fake_cli.path))
    assert launcher.launch(make_request(launch_id="L2")).ok
    assert (again / "hyperexecute.yaml").exists()


def test_an_orphan_that_ignores_sigterm_gets_sigkill(
    context: PluginContext, fake_cli: FakeCli, processes: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch, logs: list[str]
) -> None:
    monkeypatch.setattr(jobdirs, "KILL_GRACE", 0.2)  # the bound after each signal
    directory = context.state_dir / "jobs" / "K1"
    directory.mkdir(parents=True)
    orphan = hanging_cli(fake_cli, directory, processes, mode="hang-stubborn")
    record_cli(directory, orphan.pid, str(fake_cli.path), [])
    (directory / PID_FILE).write_text(json.dumps({**json.loads((directory / PID_FILE).read_text()),
                                                  "owner_start": "0"}))
    assert make_launcher(context, fake_cli).launch(make_request()).ok
    assert orphan.poll() == -signal.SIGKILL
    assert any(f"(process group {orphan.pid}) ended" in line for line in logs)


@pytest.mark.parametrize("record", [
    {"pgid": 0}, {"pgid": 1}, {"pgid": "123"}, "not json", {"pgid": 99999, "cli": ""},
])
def test_a_malformed_record_kills_nothing(
    context: PluginContext, fake_cli: FakeCli, record: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = context.state_dir / "jobs" / "K1"
    directory.mkdir(parents=True)
    full = {"cli": str(fake_cli.path), "owner": os.getpid(), "owner_start": "0", "secret_env": []}
    text = json.dumps({**full, **record}) if isinstance(record, dict) else record
    (directory / PID_FILE).write_text(text)
    (directory / "hyperexecute.yaml").write_text("{}")
    monkeypatch.setattr(os, "killpg", lambda *args: pytest.fail("killpg called"))
    assert make_launcher(context, fake_cli).launch(make_request()).ok
    assert not (directory / "hyperexecute.yaml").exists()


def test_a_symlinked_jobs_root_is_refused_with_one_warning(
    context: PluginContext, fake_cli: FakeCli, tmp_path: Path, logs: list[str]
) -> None:
    outside = tmp_path / "outside"
    (outside / "J1").mkdir(parents=True)
    (outside / "J1" / "hyperexecute.yaml").write_text("precious")
    (outside / "J1" / LOG_NAME).write_text(f"key {LT_KEY}")
    os.utime(outside / "J1", (0, 0))  # older than any max age
    context.state_dir.mkdir(parents=True, exist_ok=True)
    (context.state_dir / "jobs").symlink_to(outside)
    launcher = make_launcher(context, fake_cli)
    for launch_id in ("L1", "L2"):
        result = launcher.launch(make_request(launch_id=launch_id))
        assert not result.ok and result.detail.endswith("jobs is a symbolic link: no job directory is written through it")
    launcher.clean_job_dirs(force=True)
    assert (outside / "J1" / "hyperexecute.yaml").read_text() == "precious"
    assert (outside / "J1" / LOG_NAME).read_text() == f"key {LT_KEY}"
    assert sorted(os.listdir(outside)) == ["J1"] and not fake_cli.ran()
    assert sum("is a symbolic link: refused, job directories are not swept" in line for line in logs) == 1
    assert launcher.check([], network=False) == [
        f"hyperexecute: {context.state_dir / 'jobs'} is a symbolic link: launches refuse to write through it"]


def test_links_inside_the_jobs_root_are_never_followed(
    context: PluginContext, fake_cli: FakeCli, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "hyperexecute.yaml").write_text("precious")
    (outside / "dir" / LOG_NAME).write_text(f"key {LT_KEY}")
    (outside / "secret.txt").write_text(f"key {LT_KEY}")
    (outside / "log.txt").write_text(f"key {LT_KEY}")
    jobs = context.state_dir / "jobs"
    jobs.mkdir(parents=True)
    (jobs / "linked-dir").symlink_to(outside / "dir")  # a job "directory" that is a link
    real = jobs / "real"
    real.mkdir()
    (real / "hyperexecute.yaml").symlink_to(outside / "secret.txt")
    (real / LOG_NAME).symlink_to(outside / "log.txt")
    (real / "sub").symlink_to(outside)
    old = jobs / "old"
    old.mkdir()
    (old / "inside").symlink_to(outside)
    (old / "plain").write_text("x")
    for path in (jobs / "linked-dir", old):
        os.utime(path, (0, 0), follow_symlinks=False)

    assert make_launcher(context, fake_cli).launch(make_request()).ok
    assert not old.exists()  # a real directory goes, the link in it only as a link
    assert (jobs / "linked-dir").is_symlink()
    assert (outside / "dir" / "hyperexecute.yaml").read_text() == "precious"
    assert (outside / "dir" / LOG_NAME).read_text() == f"key {LT_KEY}"
    assert not (real / "hyperexecute.yaml").is_symlink()  # the link itself is deleted...
    assert (outside / "secret.txt").read_text() == f"key {LT_KEY}"  # ...never what it points to
    assert (outside / "log.txt").read_text() == f"key {LT_KEY}"  # not redacted through the link
    assert sorted(os.listdir(outside)) == ["dir", "log.txt", "secret.txt"]
