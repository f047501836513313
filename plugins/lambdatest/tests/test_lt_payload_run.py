"""The shipped payload run for real with bash in a sandbox: `pre` (setup.sh), `testRunnerCommand` (run-worker.sh)
and `post` (cleanup.sh), with stand-ins for the network, apt, pip and the phone (see payload_sandbox.py). The
start-worker stand-in refuses any runner file worker-runner or generic-worker (of the installed release) would
refuse; run-worker's exit status follows the worker's own exit code. The task wrapper: test_lt_payload_task.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provisioner_lambdatest.payload import builtin_payload
from provisioner_lambdatest.render import fill_runner

from payload_sandbox import ARCH, IDLE_OUT, JOB_UMASK, RELEASE, SDK_ZIP, TOKEN, UDID, Sandbox, job_env


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    box = Sandbox(tmp_path)
    box.pin_all()
    box.expect()
    return box


def template(box: Sandbox) -> dict:
    return json.loads((box.job / "worker-runner.yaml.template").read_text().replace('@json:TC_IDLE_TIMEOUT@', '"I"')
                      .replace('@json:TC_GET_SECRETS@', '"G"'))


def write_template(box: Sandbox, runner: dict) -> None:
    text = json.dumps(runner, indent=1).replace('"I"', "@json:TC_IDLE_TIMEOUT@").replace('"G"', "@json:TC_GET_SECRETS@")
    (box.job / "worker-runner.yaml.template").write_text(text)


def test_pre_run_post_serve_one_task_as_the_reference_says(sandbox: Sandbox) -> None:
    env = job_env()
    pre = sandbox.run("setup.sh", env)
    assert pre.returncode == 0, pre.stderr
    calls = sandbox.calls()
    home, tc = sandbox.home, sandbox.tc_dir
    # what Firefox's Android test tasks expect on the host
    assert any(re.fullmatch(r"apt-get install -y -q --no-install-recommends gettext-base libgtk-3-0 usbutils", c)
               for c in calls)
    assert f"python3.12 -m venv {home}/venv" in calls
    assert ("pip install --quiet --disable-pip-version-check mercurial==7.0.2 zstandard mozdevice "
            "google-cloud-logging") in calls
    # run-task and fetch-content run under the system python3: the packages go there too, as root
    assert ("system-python3 -m pip install --quiet --disable-pip-version-check zstandard mozdevice "
            "google-cloud-logging") in calls
    assert re.search(r"^\[extensions\]\nsparse =$", (home / ".hgrc").read_text(), re.M)
    assert (home / "robustcheckout.py").read_text() == "# robustcheckout\n"
    assert (home / "tooltool.py").read_text() == "# tooltool\n"
    for name in ("generic-worker", "start-worker", "livelog", "taskcluster-proxy"):
        assert (tc / name).stat().st_mode & 0o111, name
    assert (tc / "android-sdk-linux/tools/bin/sdkmanager").stat().st_mode & 0o100
    assert (tc / "android-sdk-linux/tools/lib/sdkmanager-classpath.jar").is_file()
    assert (tc / "ed25519.key").stat().st_mode & 0o077 == 0
    assert (tc / "script.py").read_bytes() == (builtin_payload() / "script.py").read_bytes()
    assert (tc / "script.py").stat().st_mode & 0o777 == 0o755
    assert (tc / "scriptvars.json").stat().st_mode & 0o777 == 0o600
    downloads = [c.split()[-1] for c in calls if c.startswith("curl ")]
    assert sorted(u for u in downloads if u.startswith(RELEASE)) == sorted(
        f"{RELEASE}{asset}-linux-{ARCH}" for asset in ("generic-worker-insecure", "start-worker", "livelog",
                                                        "taskcluster-proxy"))
    assert f"adb -s {UDID} shell svc power stayon true" in calls
    assert not any(c.startswith(("wget", "pip-outside")) for c in calls)

    again = sandbox.run("setup.sh", env)  # a host reused by the next job: nothing pinned is fetched again
    assert again.returncode == 0, again.stderr
    assert sum(c.startswith("curl ") for c in sandbox.calls()) == len(downloads)

    run = sandbox.run("run-worker.sh", env)
    assert run.returncode == 0, run.stderr
    assert "run-worker: the worker ran its task" in run.stdout and sandbox.json("task-exit") == 0
    seen = sandbox.json("runner-seen.json")
    assert seen["getSecrets"] is False and "genericWorker" not in seen["workerConfig"]
    assert seen["worker"]["path"] == f"{tc}/generic-worker-run" and "capacity" not in seen["workerConfig"]
    assert seen["provider"]["accessToken"] == seen["workerConfig"]["accessToken"] == TOKEN
    assert not (tc / "runner.yaml").exists() and not (tc / "generic-worker.json").exists()  # the token's files go
    assert f"adb -s {UDID} shell input keyevent 82" in sandbox.calls()  # the screen slept: woken

    (tc / "generic-worker.json").write_text("{}")  # had run-worker been killed
    post = sandbox.run("cleanup.sh", env)
    assert post.returncode == 0, post.stderr
    assert f"adb -s {UDID} reboot" in sandbox.calls() and "phone R5CXC1HZK0W is back" in post.stdout
    assert not (tc / "generic-worker.json").exists() and not (tc / "tasks").exists()


def test_a_launch_naming_no_phone_works_as_the_phone_adb_sees(sandbox: Sandbox) -> None:
    sandbox.serials = "PHONE42"
    sandbox.expect(worker_id="PHONE42", serial="PHONE42")
    env = job_env(udid="")
    assert env["TC_WORKER_ID"] == ""
    assert sandbox.run("setup.sh", env).returncode == 0
    run = sandbox.run("run-worker.sh", env)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("serials", [f"OTHER1 {UDID} OTHER2", "OTHER1", ""])
def test_no_worker_starts_where_the_wrapper_would_fail_every_task(sandbox: Sandbox, serials: str) -> None:
    """The wrapper fails every task on a host without exactly one USB phone, scriptvars' DEVICE_SERIAL: a worker
    started there would claim a task only to burn it. Phones plugged in since setup (ours among them), another
    phone, none: run-worker exits 1 and start-worker never runs."""
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    sandbox.serials = serials
    refused = sandbox.run("run-worker.sh", job_env())
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "script.py --check-host: the task wrapper would fail every task here: " in refused.stderr
    assert f"run-worker: no worker started (TC_WORKER_ID '{UDID}')" in refused.stderr
    assert not any(c.startswith("start-worker") for c in sandbox.calls())
    assert not (sandbox.root / "worker-call.json").exists() and not (sandbox.tc_dir / "runner.yaml").exists()


def test_setup_refuses_several_phones_though_the_pinned_one_is_among_them(sandbox: Sandbox) -> None:
    sandbox.serials = f"OTHER1 {UDID} OTHER2"
    refused = sandbox.run("setup.sh", job_env())
    assert refused.returncode == 1
    assert f"setup: phone {UDID}: the task wrapper would fail every task on this host" in refused.stderr
    assert "Must have exactly one connected Android USB device. 3 found" in refused.stderr


def test_a_power_test_serial_is_held_to_the_wrappers_rule_before_the_worker_starts(sandbox: Sandbox) -> None:
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    scriptvars = sandbox.tc_dir / "scriptvars.json"
    scriptvars.write_text(json.dumps({**json.loads(scriptvars.read_text()), "DEVICE_SERIAL": "10.0.0.5:5555"}))
    (sandbox.root / "calls.log").unlink()
    run = sandbox.run("run-worker.sh", job_env())
    assert run.returncode == 0, run.stdout + run.stderr
    calls = sandbox.calls()
    start = next(i for i, c in enumerate(calls) if c.startswith("start-worker"))
    assert calls.index("adb connect 10.0.0.5:5555") < calls.index("adb devices -l") < start
    assert "adb -s 10.0.0.5:5555 shell svc power stayon true" in calls
    sandbox.serials = ""  # unplugged: no USB phone, as production's wrapper counts them
    refused = sandbox.run("run-worker.sh", job_env())
    assert refused.returncode == 1 and "0 found: none" in refused.stderr
    assert sum(c.startswith("start-worker") for c in sandbox.calls()) == 1  # the first run's only


def test_the_worker_runs_as_worker_runner_v87_runs_it(sandbox: Sandbox) -> None:
    """worker.path is run as `<path> run --config <configPath> --with-worker-runner` with stdin and stdout the
    protocol's pipes (runmethod.go at v87.0.0): record-exit.sh hands generic-worker exactly that."""
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    run = sandbox.run("run-worker.sh", job_env())
    assert run.returncode == 0, run.stdout + run.stderr
    call = sandbox.json("worker-call.json")
    assert call["argv"] == ["run", "--config", f"{sandbox.tc_dir}/generic-worker.json", "--with-worker-runner"]
    assert call["stdin_pipe"] and call["stdout_pipe"]
    assert "generic-worker: task TCtask0001 resolved with exit code 0" in run.stdout  # logged by start-worker


def test_only_the_runner_file_is_owner_only_the_worker_keeps_the_jobs_umask(sandbox: Sandbox) -> None:
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    assert sandbox.run("run-worker.sh", job_env()).returncode == 0
    assert (sandbox.root / "runner-mode").read_text() == "0o600"
    assert sandbox.json("worker-call.json")["umask"] == JOB_UMASK == 0o022  # the worker's, so its tasks'


def test_the_shipped_checksum_list_pins_nothing_so_setup_refuses(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)  # checksums.sha256 as shipped: placeholders only
    listed = (builtin_payload() / "checksums.sha256").read_text()
    assert not re.search(r"^[0-9a-f]{64}  ", listed, re.M) and "provisioner hyperexecute-pin" in listed
    refused = box.run("setup.sh", job_env())
    assert refused.returncode == 1
    assert "no checksum in checksums.sha256 for: " in refused.stderr and "refusing to download" in refused.stderr
    assert box.calls() == []  # refused before anything is installed or fetched
    allowed = box.run("setup.sh", job_env(allow_unpinned_downloads=True))
    assert allowed.returncode == 0, allowed.stderr
    assert "WARNING: not pinned by checksums.sha256 (allow_unpinned_downloads)" in allowed.stderr


def test_a_version_without_checksums_is_refused(sandbox: Sandbox) -> None:
    refused = sandbox.run("setup.sh", job_env(tc_version="99.0.0"))
    assert refused.returncode == 1 and f"v99.0.0/start-worker-linux-{ARCH}" in refused.stderr
    assert sandbox.calls() == []


def test_a_download_that_does_not_match_its_checksum_is_refused(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.pin_all(wrong=SDK_ZIP)
    refused = box.run("setup.sh", job_env())
    assert refused.returncode == 1 and f"checksum of {SDK_ZIP} differs from checksums.sha256: refused" in refused.stderr
    assert not (box.tc_dir / SDK_ZIP).exists() and not (box.tc_dir / f"{SDK_ZIP}.part").exists()


def test_the_deployment_options_reach_the_worker(sandbox: Sandbox) -> None:
    env = job_env(idle_timeout=120, wst_audience="communitytc", wst_server_url="https://wst.example/")
    sandbox.expect(idleTimeoutSecs=120, wstAudience="communitytc", wstServerURL="https://wst.example/")
    assert sandbox.run("setup.sh", env).returncode == 0
    run = sandbox.run("run-worker.sh", env)
    assert run.returncode == 0, run.stderr


MUTATIONS = {
    "nested genericWorker config": lambda r: {**r, "workerConfig": {"genericWorker": {"config": r["workerConfig"]}}},
    "no ed25519SigningKeyLocation": lambda r: {
        **r, "workerConfig": {k: v for k, v in r["workerConfig"].items() if k != "ed25519SigningKeyLocation"}},
    "no tasksDir": lambda r: {**r, "workerConfig": {k: v for k, v in r["workerConfig"].items() if k != "tasksDir"}},
    "getSecrets left to its default": lambda r: {k: v for k, v in r.items() if k != "getSecrets"},
    "proxy port on livelog's": lambda r: {**r, "workerConfig": {**r["workerConfig"], "taskclusterProxyPort": 60099}},
    "unknown generic-worker key": lambda r: {**r, "workerConfig": {**r["workerConfig"], "idleTimeout": 5}},
    "unknown runner key": lambda r: {**r, "genericWorker": {}},
    "another provider": lambda r: {**r, "provider": {**r["provider"], "providerType": "static"}},
    "another worker group": lambda r: {**r, "provider": {**r["provider"], "workerGroup": "lt"}},
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_runner_file_generic_worker_would_refuse_fails_the_run(sandbox: Sandbox, mutation: str) -> None:
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    write_template(sandbox, MUTATIONS[mutation](template(sandbox)))
    run = sandbox.run("run-worker.sh", job_env())
    assert run.returncode == 3 and "start-worker stand-in: " in run.stdout, (mutation, run.stdout, run.stderr)
    assert not (sandbox.root / "runner-seen.json").exists()


def test_v87_refuses_a_key_of_a_later_release(sandbox: Sandbox) -> None:
    """capacity (generic-worker v100+) in the runner file: the v87 worker refuses it, v106's takes it."""
    runner = template(sandbox)
    write_template(sandbox, {**runner, "workerConfig": {**runner["workerConfig"], "capacity": 1}})
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    run = sandbox.run("run-worker.sh", job_env())
    assert run.returncode == 3 and "workerConfig.capacity is not a generic-worker v87.0.0 setting" in run.stdout
    assert sandbox.run("setup.sh", job_env(tc_version="106.0.0")).returncode == 0
    run = sandbox.run("run-worker.sh", job_env(tc_version="106.0.0"))
    assert run.returncode == 0, run.stderr


def test_an_idle_out_ends_the_job_normally(sandbox: Sandbox) -> None:
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    sandbox.plan("idle")
    run = sandbox.run("run-worker.sh", job_env())
    assert run.returncode == 0, run.stderr
    assert f"idle-out: no task came within idleTimeoutSecs (generic-worker exited {IDLE_OUT})" in run.stdout
    assert not (sandbox.tc_dir / "runner.yaml").exists() and not (sandbox.tc_dir / "generic-worker.exit").exists()


@pytest.mark.parametrize("code", [64, 69, 73, 2])
def test_a_crashed_or_misconfigured_worker_fails_the_job_with_its_code(sandbox: Sandbox, code: int) -> None:
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    sandbox.plan(f"exit {code}")
    run = sandbox.run("run-worker.sh", job_env())
    assert run.returncode == code and f"run-worker: generic-worker exited {code}" in run.stderr


def test_a_superseded_task_runs_the_worker_again_once_at_most(sandbox: Sandbox) -> None:
    """Models production's run_gw.py (a worker output line saying "has been superseded" starts the worker again),
    kept for parity: generic-worker v87 and worker-runner v87 print no such line, so on v87 it never fires. The
    stand-in prints the line production looks for, not a message of v87's."""
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    sandbox.plan("superseded", "task 0")
    run = sandbox.run("run-worker.sh", job_env())
    assert run.returncode == 0, run.stderr
    # tasks-resolved-count.txt was removed: the second run took a task instead of exiting at once
    assert (sandbox.root / "worker-runs.log").read_text() == "superseded\ntask 0\n"
    assert "the task was superseded: starting the worker again (run 2 of at most 2)" in run.stdout
    (sandbox.root / "worker-runs.log").unlink()
    sandbox.plan(*["superseded"] * 3)
    run = sandbox.run("run-worker.sh", job_env())
    assert run.returncode == 0 and (sandbox.root / "worker-runs.log").read_text() == "superseded\n" * 2


def test_get_secrets_is_off_unless_the_pool_turns_it_on(sandbox: Sandbox) -> None:
    assert job_env()["TC_GET_SECRETS"] == "false" and job_env(get_secrets=True)["TC_GET_SECRETS"] == "true"
    assert sandbox.run("setup.sh", job_env()).returncode == 0
    run = sandbox.run("run-worker.sh", job_env(get_secrets=True))
    assert run.returncode == 3 and "getSecrets is not false" in run.stdout  # the stand-in holds production's value


def test_setup_needs_the_host_ip(sandbox: Sandbox) -> None:
    refused = sandbox.run("setup.sh", job_env(), HostIP="")
    assert refused.returncode == 1 and "HostIP (set by LambdaTest) is empty" in refused.stderr


def test_post_waits_for_the_phone_a_bounded_time(sandbox: Sandbox) -> None:
    sandbox.tc_dir.mkdir()
    (sandbox.tc_dir / "runner.yaml").write_text(TOKEN)
    post = sandbox.run("cleanup.sh", job_env(), ADB_MODE="never-back", TC_REBOOT_WAIT="0")
    assert post.returncode == 1
    assert f"phone {UDID} not back from its reboot within 0s (TC_REBOOT_WAIT)" in post.stderr
    assert not (sandbox.tc_dir / "runner.yaml").exists()  # the credentials are gone all the same


def test_post_asks_adb_again_for_a_phone_a_task_left_rebooting(sandbox: Sandbox) -> None:
    (sandbox.root / "adb-hidden").write_text("3")  # the next three `adb devices` list no phone
    post = sandbox.run("cleanup.sh", job_env(), TC_REBOOT_WAIT="300")
    assert post.returncode == 0, post.stdout + post.stderr
    calls = sandbox.calls()
    tries = [c for c in calls if c in ("adb devices", "sleep 2", "sleep 4", "sleep 8")]
    assert tries == ["adb devices", "sleep 2", "adb devices", "sleep 4", "adb devices", "sleep 8", "adb devices"]
    assert calls.index("sleep 8") < calls.index(f"adb -s {UDID} reboot") and "phone R5CXC1HZK0W is back" in post.stdout


def test_post_gives_up_finding_the_phone_at_the_reboot_deadline(sandbox: Sandbox) -> None:
    sandbox.serials = ""
    post = sandbox.run("cleanup.sh", job_env(), TC_REBOOT_WAIT="20")
    assert post.returncode == 1, post.stdout + post.stderr
    assert "adb listed no phone of this job within 20s (TC_REBOOT_WAIT): not rebooted" in post.stderr
    sleeps = [c for c in sandbox.calls() if c.startswith("sleep ")]
    assert sleeps == ["sleep 2", "sleep 4", "sleep 8", "sleep 6"]  # back-off, never past the deadline
    assert not any(c.endswith(" reboot") for c in sandbox.calls())


@pytest.mark.parametrize("token", [TOKEN, 'a&b\\c"d/e|f', "ünï-côdé", "@TC_DIR@"])
def test_the_dry_runs_rendering_is_the_hosts(sandbox: Sandbox, token: str) -> None:
    """render.fill_runner (dry run) and run-worker.sh (the phone's host) render the same runner config."""
    env = {**job_env(), "TASKCLUSTER_ACCESS_TOKEN": token, "TC_WORKER_ID": UDID, "TC_DIR": str(sandbox.tc_dir)}
    assert sandbox.run("setup.sh", env).returncode == 0
    assert sandbox.run("run-worker.sh", env).returncode == 0
    seen = sandbox.json("runner-seen.json")
    assert json.loads(fill_runner((sandbox.job / "worker-runner.yaml.template").read_text(), env)) == seen
    assert seen["provider"]["accessToken"] == token


def test_fill_runner_refuses_what_the_host_would() -> None:
    from provisioner_lambdatest.render import RenderError

    assert fill_runner('{"a": "@X@", "n": @json:N@}', {"X": 'q"', "N": "7"}) == '{"a": "q\\"", "n": 7}'
    with pytest.raises(RenderError, match="variable N must be digits, true or false"):
        fill_runner("@json:N@", {"N": "7; rm"})
    with pytest.raises(RenderError, match="variable X is not set"):
        fill_runner('"@X@"', {})
    with pytest.raises(RenderError, match="control character"):
        fill_runner('"@X@"', {"X": "a\nb"})
