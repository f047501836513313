"""The HyperExecute launcher against a fake CLI: argv, env, rendered yaml, failures, timeout, secrets, cleanup."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from provisioner import LaunchRequest, PluginContext, Pool, Selector
from provisioner_lambdatest import HyperExecuteLauncher, update_cli
from provisioner_lambdatest.jobdirs import CLI_OWN_LOG, LOG_NAME, PID_FILE

from lt_support import LT_KEY, LT_USER, SECRETS, TC_CLIENT, TC_TOKEN, FakeCli

UDID = "R5CXC1HZK0W"
JOB_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
POOL_LAUNCH = {"client_id_env": "TC_CLIENT_A55", "access_token_env": "TC_TOKEN_A55"}


def make_pool(**changes: Any) -> Pool:
    fields: dict[str, Any] = dict(
        name="a55-perf", queue="proj-autophone/gecko-t-lambda-perf-a55", queue_source="taskcluster",
        device_provider="lambdatest", launcher="hyperexecute", udids=(UDID,), launch=dict(POOL_LAUNCH),
    )
    fields.update(changes)
    return Pool(**fields)


def make_request(pool: Pool | None = None, udid: str = UDID, launch_id: str = "L1", **changes: Any) -> LaunchRequest:
    pool = pool or make_pool()
    return LaunchRequest(launch_id=launch_id, pool=pool, udid=udid, labels=("tcdp", pool.name, udid), **changes)


def make_launcher(context: PluginContext, fake: FakeCli, **options: Any) -> HyperExecuteLauncher:
    return HyperExecuteLauncher({"cli": str(fake.path), "cli_timeout": 20, **options}, context)


def job_dir(context: PluginContext, launch_id: str = "L1") -> Path:
    return context.state_dir / "jobs" / launch_id


def assert_private(directory: Path) -> None:
    for path in [directory, *directory.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_a_pinned_launch(context: PluginContext, fake_cli: FakeCli, logs: list[str]) -> None:
    result = make_launcher(context, fake_cli).launch(make_request())
    assert result.ok and result.job_id == JOB_ID
    assert result.url == f"https://hyperexecute.lambdatest.com/hyperexecute/task?jobId={JOB_ID}"
    record = fake_cli.record()
    directory = job_dir(context)
    assert record["argv"] == [
        str(fake_cli.path), "--no-track", "--disable-updates", "--labels", f"tcdp,a55-perf,{UDID}",
        "--config", str(directory / "hyperexecute.yaml"),
    ]
    assert record["cwd"] == str(directory)
    assert record["lock"] == "held"  # the launch holds the CLI lock shared: no update can run now
    assert {"setup.sh", "run-worker.sh", "cleanup.sh", "worker-runner.yaml.template", "hyperexecute.yaml"} <= set(
        record["files"])
    env = record["env"]
    assert (env["LT_USERNAME"], env["LT_ACCESS_KEY"]) == (LT_USER, LT_KEY)
    assert "TC_TOKEN_A55" not in env and "UNRELATED_SECRET" not in env
    assert_no_secret(" ".join(record["argv"]))

    doc = json.loads(record["yaml"])  # JSON text is YAML 1.2
    args = doc["framework"]["args"]
    assert args["fixedIP"] == UDID and args["devices"] == [".*-.*"]
    assert (args["privateCloud"], args["isRealMobile"], args["platformName"]) == (True, True, "android")
    assert (args["reservation"], args["disableReleaseDevice"], args["queueTimeout"]) == (False, True, 600)
    assert args["buildName"] == "a55-perf" and args["video"] is False  # template keys stay
    assert (doc["runson"], doc["concurrency"], doc["globalTimeout"]) == ("android", 1, 90)
    assert doc["testDiscovery"] == {"type": "raw", "mode": "static", "command": "echo taskcluster-worker"}
    assert doc["testRunnerCommand"] == "bash run-worker.sh" and doc["pre"] == ["bash setup.sh"]
    assert "jobLabel" not in doc  # labels go through --labels only
    assert doc["env"]["TASKCLUSTER_CLIENT_ID"] == TC_CLIENT
    assert doc["env"]["TASKCLUSTER_ACCESS_TOKEN"] == TC_TOKEN
    assert doc["env"]["TC_WORKER_TYPE"] == "gecko-t-lambda-perf-a55"
    assert doc["env"]["TC_WORKER_POOL_ID"] == "proj-autophone/gecko-t-lambda-perf-a55"
    assert (doc["env"]["TC_WORKER_GROUP"], doc["env"]["TC_WORKER_ID"]) == ("lambda", UDID)
    assert doc["env"]["TASKCLUSTER_ROOT_URL"] == "https://firefox-ci-tc.services.mozilla.com"
    assert doc["env"]["TC_VERSION"] == "87.0.0"  # production's pin, the default of launch.tc_version

    assert not (directory / "hyperexecute.yaml").exists()  # the secret-bearing file is gone
    assert not (directory / PID_FILE).exists()  # the CLI's record goes with it
    assert JOB_ID in (directory / LOG_NAME).read_text()
    assert_private(directory)
    assert_no_secret(*logs)
    assert any(f"job {JOB_ID} submitted" in line for line in logs)


def test_a_selector_launch_names_the_device_pattern(context: PluginContext, fake_cli: FakeCli) -> None:
    pool = make_pool(udids=(), selector=Selector("Galaxy A55 5G", "14"), targeting="selector",
                     launch={**POOL_LAUNCH, "build_name": "perf", "worker_type": "wt", "tc_version": "106.0.0"})
    result = make_launcher(context, fake_cli).launch(make_request(pool, udid=""))
    assert result.ok
    record = fake_cli.record()
    assert record["argv"][3:5] == ["--labels", "tcdp,a55-perf"]  # no empty label for the phone it does not name
    doc = json.loads(record["yaml"])
    assert "fixedIP" not in doc["framework"]["args"]
    assert doc["framework"]["args"]["devices"] == ["Galaxy A55 5G-14"]
    assert doc["framework"]["args"]["buildName"] == "perf"
    assert (doc["env"]["TC_WORKER_TYPE"], doc["env"]["TC_WORKER_ID"], doc["env"]["TC_VERSION"]) == ("wt", "", "106.0.0")


def test_a_token_from_lambdatest_secrets_is_never_uploaded(context: PluginContext, fake_cli: FakeCli) -> None:
    del context.environ["TC_TOKEN_A55"]  # type: ignore[attr-defined]
    pool = make_pool(launch={**POOL_LAUNCH, "access_token_secret": "TC_A55_TOKEN"})
    assert make_launcher(context, fake_cli).launch(make_request(pool)).ok
    assert json.loads(fake_cli.record()["yaml"])["env"]["TASKCLUSTER_ACCESS_TOKEN"] == "${{ .secrets.TC_A55_TOKEN }}"


@pytest.mark.parametrize("mode", ["fail", "fail-with-id", "nojob"])
def test_a_failed_submission_reports_the_redacted_tail(
    context: PluginContext, fake_cli: FakeCli, logs: list[str], mode: str
) -> None:
    fake_cli.mode = mode
    result = make_launcher(context, fake_cli).launch(make_request())
    assert not result.ok
    directory = job_dir(context)
    if mode == "fail":
        assert result.detail.startswith("hyperexecute exited with status 2: ")
        assert "access key *** refused; env token ***" in result.detail
        assert "auth with *** and ***" in (directory / CLI_OWN_LOG).read_text()
    elif mode == "fail-with-id":
        assert "status 1 (job 11111111-2222-3333-4444-555555555555): " in result.detail
        assert "upload interrupted" in result.detail
    else:
        assert result.detail == "no job id in the CLI's output: Validating yaml ... done"
    assert not (directory / "hyperexecute.yaml").exists()
    assert_no_secret(result.detail, (directory / LOG_NAME).read_text(), *logs)
    assert_private(directory)


def test_a_hung_cli_is_killed_after_the_timeout(context: PluginContext, fake_cli: FakeCli, logs: list[str]) -> None:
    fake_cli.mode = "hang"
    launcher = make_launcher(context, fake_cli, cli_timeout=0.3)
    started = time.monotonic()
    result = launcher.launch(make_request())
    assert time.monotonic() - started < 1.0
    assert not result.ok and result.detail.startswith("hyperexecute killed after 0.3s without finishing")
    assert fake_cli.ran() and not (job_dir(context) / "hyperexecute.yaml").exists()
    assert not (job_dir(context) / PID_FILE).exists()
    assert_no_secret(*logs)


@pytest.mark.parametrize("mode", ["ok", "link", "ansi", "ansi-link"])
def test_the_job_id_comes_from_the_id_line_or_the_dashboard_link(
    context: PluginContext, fake_cli: FakeCli, mode: str
) -> None:
    fake_cli.mode = mode
    result = make_launcher(context, fake_cli).launch(make_request())
    assert result.ok and result.job_id == JOB_ID, result.detail
    assert result.url == f"https://hyperexecute.lambdatest.com/hyperexecute/task?jobId={JOB_ID}"


def test_missing_credentials_fail_the_launch(context: PluginContext, fake_cli: FakeCli) -> None:
    launcher = make_launcher(context, fake_cli)
    environ: dict[str, str] = context.environ  # type: ignore[assignment]
    del environ["TC_TOKEN_A55"]
    assert launcher.launch(make_request()).detail == "environment variable TC_TOKEN_A55 is not set"
    del environ["TC_CLIENT_A55"]
    assert launcher.launch(make_request()).detail == "environment variable TC_CLIENT_A55 is not set"
    del environ["LT_USERNAME"]
    assert launcher.launch(make_request()).detail == "environment variable LT_USERNAME is not set"
    assert not fake_cli.ran()


def test_bad_requests_fail_the_launch(context: PluginContext, fake_cli: FakeCli) -> None:
    launcher = make_launcher(context, fake_cli)
    assert "names no udid" in launcher.launch(make_request(udid="")).detail
    comma = LaunchRequest(launch_id="L2", pool=make_pool(), udid=UDID, labels=("tcdp", "a,b", UDID))
    assert "comma" in launcher.launch(comma).detail
    assert "cannot name a directory" in launcher.launch(make_request(launch_id="../x")).detail
    for udid in (" ", "${{ .secrets.X }}", "U1\nforged", "-x"):
        detail = launcher.launch(make_request(udid=udid, launch_id="L9")).detail
        assert detail.startswith(f"udid {udid!r} is not a UDID") and "\n" not in detail
    assert launcher.launch(make_request(launch_id="L3")).ok
    assert "already exists" in launcher.launch(make_request(launch_id="L3")).detail


def test_a_missing_cli_fails_the_launch_and_the_check(context: PluginContext, fake_cli: FakeCli, tmp_path: Path) -> None:
    launcher = HyperExecuteLauncher({"cli": str(tmp_path / "nowhere" / "hyperexecute")}, context)
    result = launcher.launch(make_request())
    assert not result.ok and result.detail.startswith("cannot run ") and "No such file" in result.detail
    assert launcher.check([], network=False) == [
        f"hyperexecute: CLI '{tmp_path / 'nowhere' / 'hyperexecute'}' is missing or not executable (option cli)"
    ]
    fake_cli.path.chmod(0o600)
    assert "missing or not executable" in make_launcher(context, fake_cli).check([], network=False)[0]


def test_an_unwritable_job_directory_fails_the_launch(context: PluginContext, fake_cli: FakeCli) -> None:
    context.state_dir.mkdir(parents=True, exist_ok=True)
    (context.state_dir / "jobs").write_text("in the way")
    result = make_launcher(context, fake_cli).launch(make_request())
    assert not result.ok and result.detail.startswith("job directory: [Errno 17] File exists")


def test_check_reports_pools_and_variables(context: PluginContext, fake_cli: FakeCli, tmp_path: Path) -> None:
    launcher = make_launcher(context, fake_cli)
    good = make_pool()
    missing_dir = make_pool(name="p2", launch={**POOL_LAUNCH, "payload": str(tmp_path / "none")})
    git_without_ref = make_pool(name="p3", launch={**POOL_LAUNCH, "payload": "https://example.org/payload.git"})
    unset = make_pool(name="p4", launch={"client_id_env": "NOPE_ID", "access_token_env": "NOPE_TOKEN"})
    secret_store = make_pool(name="p5", launch={"client_id_env": "TC_CLIENT_A55", "access_token_secret": "S"})
    git_offline = make_pool(name="p6", launch={**POOL_LAUNCH, "payload": "https://example.org/p.git", "payload_ref": "v1"})
    context.environ = {k: v for k, v in context.environ.items() if k != "LT_ACCESS_KEY"}
    assert launcher.check([good, missing_dir, git_without_ref, unset, secret_store, git_offline], network=False) == [
        "hyperexecute: environment variable LT_ACCESS_KEY (access_key_env) is not set",
        f"pool p2: payload {tmp_path / 'none'}: not a directory",
        "pool p3: payload https://example.org/payload.git: a git payload needs payload_ref (tag or commit)",
        "pool p4: environment variable NOPE_ID (launch.client_id_env) is not set",
        "pool p4: environment variable NOPE_TOKEN (launch.access_token_env) is not set",
    ]


def test_old_job_directories_are_removed(context: PluginContext, fake_cli: FakeCli) -> None:
    jobs = context.state_dir / "jobs"
    now = context.clock.now()
    ages = {"old": 8 * 86400, "crashed": 3600, "fresh": 10}
    for name, age in ages.items():
        (jobs / name).mkdir(parents=True)
        (jobs / name / "hyperexecute.yaml").write_text("{}")
        os.utime(jobs / name, (now - age, now - age))
    (jobs / "stray-file").write_text("")
    launcher = make_launcher(context, fake_cli)
    assert launcher.launch(make_request()).ok
    assert not (jobs / "old").exists()
    # the first launch of a process deletes every secret file an earlier process left, however recent
    assert (jobs / "crashed").is_dir() and not (jobs / "crashed" / "hyperexecute.yaml").exists()
    assert (jobs / "fresh").is_dir() and not (jobs / "fresh" / "hyperexecute.yaml").exists()
    assert (jobs / "L1").is_dir() and (jobs / "stray-file").exists()
    # the sweep runs at most every few minutes on launches; `check` changes nothing on disk
    os.utime(jobs / "fresh", (now - 9 * 86400, now - 9 * 86400))
    assert launcher.launch(make_request(launch_id="L2")).ok and (jobs / "fresh").exists()
    launcher.check([], network=False)
    assert (jobs / "fresh").exists()
    context.clock.advance(601)
    assert launcher.launch(make_request(launch_id="L3")).ok and not (jobs / "fresh").exists()
    launcher.close()


def test_update_cli_runs_under_the_exclusive_lock(context: PluginContext, fake_cli: FakeCli) -> None:
    fake_cli.mode = "update"
    ok, message = update_cli({"cli": str(fake_cli.path)}, context)
    assert ok and message == "hyperexecute: updated: HyperExecute CLI updated to 1.2.3"
    record = fake_cli.record()
    assert record["argv"][1:] == ["update"] and record["lock"] == "held"
    fake_cli.mode = "update-fail"
    ok, message = update_cli({"cli": str(fake_cli.path)}, context)
    assert not ok and message == "hyperexecute: update failed (3): update failed for ***"
    assert LT_KEY not in (context.state_dir / "hyperexecute-update.log").read_text()


def test_update_cli_needs_the_cli_and_credentials(context: PluginContext, fake_cli: FakeCli, tmp_path: Path) -> None:
    assert update_cli({"cli": str(tmp_path / "none")}, context)[0] is False
    context.environ = {}
    assert update_cli({"cli": str(fake_cli.path)}, context) == (
        False, "hyperexecute: environment variable LT_USERNAME is not set")
