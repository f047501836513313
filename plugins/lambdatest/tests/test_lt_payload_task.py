"""What a task sees on the phone's host: the task wrapper /home/ltuser/taskcluster/script.py run as Firefox's lambda
tasks run it (run-task -- script.py <command>, under the system python3), scriptvars.json, the environment
start-worker and the task get, the python packages both interpreters import, and the one list of downloads
setup.sh and the daemon read (see payload_sandbox.py for the stand-ins)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provisioner_lambdatest.downloads import ARCHES
from provisioner_lambdatest.payload import unpinned

from payload_sandbox import ARCH, HOST_IP, LT_ENV, SDK_ZIP, TOKEN, UDID, Sandbox, job_env

SCRIPTVARS = {"ANDROID_DEVICE", "ANDROID_SERIAL", "DEVICE_IP", "DEVICE_NAME", "DEVICE_SERIAL", "DOCKER_IMAGE_VERSION",
              "HOME", "HOST_IP", "HOSTNAME", "HYE_JOB_NUMBER", "JOB_ID", "ORIGINAL_TASK_ID", "PATH", "PYTHONIOENCODING",
              "TASK_ID", "TC_WORKER_GROUP", "TC_WORKER_TYPE", "USER", "UserPorts", "PowerMeterSerial"}
FAIL = "TEST-UNEXPECTED-FAIL | lambdatest | "
PHONE_NAMES = ("DEVICE_NAME", "DEVICE_SERIAL", "HOST_IP", "ANDROID_DEVICE", "DEVICE_IP", "DOCKER_IMAGE_VERSION")
CLEAN = ("shell rm -rf /data/local/tests /data/local/tmp/* /data/local/tmp/xpcb /sdcard/tests "
         "/sdcard/raptor-profile")


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(tmp_path)
    sandbox.pin_all()
    sandbox.expect()
    done = sandbox.run("setup.sh", job_env())
    assert done.returncode == 0, done.stderr
    return sandbox


def scriptvars(box: Sandbox) -> dict[str, str]:
    return json.loads((box.tc_dir / "scriptvars.json").read_text())


def command_env(box: Sandbox) -> dict[str, str]:
    lines = (box.root / "command-env.txt").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def wrap(box: Sandbox, command: str, **output: Any) -> subprocess.CompletedProcess[str]:
    """The wrapper run as a task runs it, with the environment the worker gives its tasks (scriptvars')."""
    env = {**scriptvars(box), "TASK_ID": "TCtask0001"}
    output = output or {"capture_output": True}
    return subprocess.run([str(box.bin / "run-task"), "--", str(box.tc_dir / "script.py"), "bash", "-c", command],
                          env=env, cwd=box.root, text=True, timeout=60, **output)


def wrap_into_calls(box: Sandbox, command: str) -> list[str]:
    """wrap(), its output appended to calls.log as it comes: one timeline of what it prints and the adb calls."""
    (box.root / "calls.log").unlink(missing_ok=True)
    with open(box.root / "calls.log", "a") as log:  # O_APPEND, as the stand-ins' `>>`
        assert wrap(box, command, stdout=log, stderr=subprocess.STDOUT).returncode == 0
    return box.calls()


def set_device_serial(box: Sandbox, serial: str) -> None:
    (box.tc_dir / "scriptvars.json").write_text(json.dumps({**scriptvars(box), "DEVICE_SERIAL": serial}))


def test_scriptvars_hold_the_hosts_names_and_the_power_meter(tmp_path: Path, box: Sandbox) -> None:
    values = scriptvars(box)
    assert set(values) == SCRIPTVARS and values["PowerMeterSerial"] == ""
    assert values["DEVICE_SERIAL"] == values["ANDROID_SERIAL"] == values["DEVICE_NAME"] == UDID
    assert (values["HOST_IP"], values["JOB_ID"], values["TASK_ID"]) == (HOST_IP, LT_ENV["JOB_ID"], LT_ENV["TASK_ID"])
    assert values["TC_WORKER_TYPE"] == "gecko-t-lambda-perf-a55" and values["HOME"] == str(box.home)
    assert values["PATH"].split(":")[:3] == [str(box.tc_dir), f"{box.tc_dir}/android-sdk-linux/tools/bin",
                                             f"{box.home}/venv/bin"]
    assert (box.tc_dir / "scriptvars.json").stat().st_mode & 0o777 == 0o600
    assert box.run("setup.sh", job_env(), PowerMeterSerial="PM-77").returncode == 0
    values = scriptvars(box)
    assert values["PowerMeterSerial"] == values["USB_POWER_METER_SERIAL_NUMBER"] == "PM-77"


def test_setup_refuses_a_home_that_is_not_ltusers_unless_in_the_sandbox(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    sandbox.pin_all()
    env = {**job_env(), "PAYLOAD_TEST_ROOT": ""}  # as on a phone's host: the fixed paths
    refused = sandbox.run("setup.sh", env)
    assert refused.returncode == 1 and refused.stderr == (
        f"setup: HOME is {sandbox.home}, not /home/ltuser: Firefox's tasks run /home/ltuser/taskcluster/script.py, "
        "so the job must run as ltuser\n")
    assert sandbox.calls() == []


@pytest.mark.parametrize("status", [0, 1, 3])
def test_a_task_runs_through_the_wrapper_with_the_reference_environment(box: Sandbox, status: int) -> None:
    box.plan(f"task {status}")
    run = box.run("run-worker.sh", job_env(), TASKCLUSTER_CLIENT_ID="leaky", LT_ACCESS_KEY="lt-key")
    assert run.returncode == 0, run.stdout + run.stderr  # the worker ran its task, whatever the task's result
    assert box.json("task-exit") == status  # the command's status, unchanged
    env = command_env(box)
    tc = box.tc_dir
    assert env["PATH"].split(":")[-2:] == [f"{tc}/android-sdk-linux/tools/bin", f"{tc}/android-sdk-linux/platform-tools"]
    assert (env["NEED_XVFB"], env["DEBUG"], env["TASK_ID"]) == ("false", "*", "TCtask0001")
    # the task's own environment names these with stale values (the generic-worker stand-in): the wrapper sets
    # them from scriptvars.json
    values = scriptvars(box)
    assert {name: env[name] for name in PHONE_NAMES} == {name: values[name] for name in PHONE_NAMES}
    assert (values["DEVICE_NAME"], values["DEVICE_SERIAL"], values["HOST_IP"]) == (UDID, UDID, HOST_IP)
    assert [values[name] for name in PHONE_NAMES[3:]] == [LT_ENV[name] for name in PHONE_NAMES[3:]]
    log = (box.root / "task-log.txt").read_text()
    assert f"LambdaTest job number: {LT_ENV['HYE_JOB_NUMBER']}" in log
    assert (f"https://hyperexecute.lambdatest.com/hyperexecute/task?jobId={LT_ENV['JOB_ID']}"
            f"&taskId={LT_ENV['TASK_ID']}") in log
    assert "command-output" in log and "command-stderr" in log and FAIL not in log
    calls = box.calls()
    assert f"adb -s {UDID} {CLEAN}" in calls
    assert not any("setprop persist.sys.timezone" in c for c in calls)  # not rooted: left as it is


def test_the_worker_and_its_tasks_see_only_the_allow_listed_environment(box: Sandbox) -> None:
    run = box.run("run-worker.sh", job_env(), LT_USERNAME="lt-user", LT_ACCESS_KEY="lt-key", SOMETHING="x")
    assert run.returncode == 0, run.stdout + run.stderr
    worker = box.json("worker-env.json")
    # scriptvars.json's names, and what the processes in between add themselves: bash (record-exit.sh) its PWD,
    # SHLVL and _, the start-worker stand-in's python its PEP 538 LC_CTYPE
    assert set(worker) - {"PWD", "SHLVL", "_", "LC_CTYPE"} == SCRIPTVARS
    task = command_env(box)
    leaked = [name for name in task if name.startswith(("TASKCLUSTER_CLIENT", "TASKCLUSTER_ACCESS", "TC_", "LT_"))
              and name not in ("TC_WORKER_GROUP", "TC_WORKER_TYPE")]
    assert leaked == [] and "SOMETHING" not in task and "PAYLOAD_TEST_ROOT" not in task
    values = "\n".join(task.values())
    assert TOKEN not in values and "project/autophone/a55" not in values and "lt-key" not in values


def test_a_rooted_phone_is_set_to_utc(box: Sandbox) -> None:
    (box.root / "adb-root").touch()
    done = wrap(box, "exit 0")
    assert done.returncode == 0, done.stdout
    assert f"adb -s {UDID} shell setprop persist.sys.timezone UTC" in box.calls()


@pytest.mark.parametrize("serials", ["", f"{UDID} OTHER1", "OTHER1"])
def test_no_phone_two_phones_or_another_phone_fail_once_without_running_the_command(box: Sandbox, serials: str) -> None:
    box.serials = serials
    done = wrap(box, f"touch {box.root}/ran")
    assert done.returncode == 1
    assert sum(line.startswith(FAIL) for line in done.stdout.splitlines()) == 1, done.stdout
    assert not (box.root / "ran").exists()


def test_the_wrapper_prints_the_link_checks_cleans_then_sets_the_timezone_on_the_jobs_phone(box: Sandbox) -> None:
    (box.root / "adb-root").touch()
    calls = wrap_into_calls(box, "echo command-ran")
    link = next(i for i, c in enumerate(calls) if c.startswith("LambdaTest job: https://"))
    adb = [c for c in calls if c.startswith("adb ")]
    assert adb == ["adb devices -l", f"adb -s {UDID} {CLEAN}", f"adb -s {UDID} shell id",
                   f"adb -s {UDID} shell setprop persist.sys.timezone UTC"]
    assert link < calls.index("adb devices -l") and calls.index(adb[-1]) < calls.index("command-ran")


def test_a_power_test_phone_is_connected_over_the_network_and_counted_once(box: Sandbox) -> None:
    """DEVICE_SERIAL ending in :5555: `adb connect` first; the phone, still on USB, is listed twice (USB and
    network) and counts once, as production counts USB devices only."""
    set_device_serial(box, "10.0.0.5:5555")
    calls = wrap_into_calls(box, "echo command-ran")
    assert FAIL not in "\n".join(calls) and "command-ran" in calls, calls
    adb = [c for c in calls if c.startswith("adb ")]
    assert adb == ["adb connect 10.0.0.5:5555", "adb devices -l", f"adb -s 10.0.0.5:5555 {CLEAN}",
                   "adb -s 10.0.0.5:5555 shell id", "adb -s 10.0.0.5:5555 shell su -c id 2>/dev/null || true"]
    assert calls.index(next(c for c in calls if c.startswith("LambdaTest job: "))) < calls.index(adb[0])


def test_a_power_test_phone_without_a_usb_phone_fails_the_task(box: Sandbox) -> None:
    set_device_serial(box, "10.0.0.5:5555")
    box.serials = ""  # unplugged: production's wrapper counts USB devices only and finds none
    done = wrap(box, f"touch {box.root}/ran")
    assert done.returncode == 1 and f"{FAIL}Must have exactly one connected Android USB device. 0 found" in done.stdout
    assert not (box.root / "ran").exists() and "adb connect 10.0.0.5:5555" in box.calls()


def test_the_wrapper_runs_under_the_system_python_with_the_standard_library_only(box: Sandbox) -> None:
    script = (box.tc_dir / "script.py").read_text()
    assert script.startswith("#!/usr/bin/python3\n")
    imports = {line.split()[1] for line in script.splitlines() if line.startswith(("import ", "from "))}
    assert imports == {"json", "os", "subprocess", "sys"}


@pytest.mark.parametrize("which", ["system", "venv"])
def test_pre_fails_in_one_line_when_an_interpreter_cannot_import_the_task_packages(tmp_path: Path, which: str) -> None:
    sandbox = Sandbox(tmp_path)
    sandbox.pin_all()
    (sandbox.root / f"pip-broken-{which}").touch()
    refused = sandbox.run("setup.sh", job_env())
    interpreter = f"{sandbox.root}/usr/bin/python3" if which == "system" else f"{sandbox.home}/venv/bin/python"
    assert refused.returncode == 1 and refused.stderr == (
        f"setup: {interpreter} cannot import zstandard and mozdevice: the tasks' toolchain fetches and adb calls "
        "would fail\n")


def test_setup_and_the_daemon_read_one_list_of_downloads(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    common = ["robustcheckout.py", "tooltool.py", SDK_ZIP]
    ours = [f"v87.0.0/{asset}-linux-{ARCH}" for asset in ("generic-worker-insecure", "start-worker", "livelog",
                                                            "taskcluster-proxy")]
    sandbox.pin([*common[:1], *ours])  # partly filled: tooltool.py and the SDK have no checksum
    why = unpinned(sandbox.job, "87.0.0")
    refused = sandbox.run("setup.sh", job_env())
    assert f"tooltool.py; {SDK_ZIP}" in why and "a complete set for one arch" not in why
    assert refused.returncode == 1 and f"no checksum in checksums.sha256 for: tooltool.py {SDK_ZIP};" in refused.stderr
    sandbox.pin(common[1:])
    assert unpinned(sandbox.job, "87.0.0") == ""
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    other = next(arch for arch in ARCHES if arch != ARCH)  # only the other arch's binaries: the daemon cannot
    (sandbox.job / "checksums.sha256").write_text("".join(  # know the host's, this host's setup refuses
        f"{'a' * 64}  {name.replace(ARCH, other)}\n" for name in ours) + "".join(f"{'b' * 64}  {n}\n" for n in common))
    assert unpinned(sandbox.job, "87.0.0") == ""
    assert "v87.0.0/start-worker-linux-" + ARCH in sandbox.run("setup.sh", job_env()).stderr


def test_setup_downloads_what_downloads_txt_says(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    sandbox.pin_all()
    listed = (sandbox.job / "downloads.txt").read_text()
    moved = "https://mirror.example/pinned/tooltool.py"
    (sandbox.job / "downloads.txt").write_text("\n".join(
        f"tooltool.py  {moved}" if line.startswith("tooltool.py") else line for line in listed.splitlines()))
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    assert f"curl -fsSL --retry 3 -o {sandbox.home}/tooltool.py.part {moved}" in sandbox.calls()
    with (sandbox.job / "downloads.txt").open("a") as out:
        out.write("\nextra.bin  https://example.org/extra.bin\n")
    refused = sandbox.run("setup.sh", job_env())
    assert refused.returncode == 1 and "downloads.txt lists extra.bin, which setup.sh has no place for" in refused.stderr

