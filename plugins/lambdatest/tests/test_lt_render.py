"""The job yaml against the reference's HyperExecute facts, key by key; what no template or pool may change;
labels only through --labels; the dry run's render(); `check --network` and the CLI's own --validate."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any


from provisioner import PluginContext, Selector
from provisioner_lambdatest.payload import builtin_payload

from lt_support import SECRETS, TC_CLIENT, TC_TOKEN, FakeCli
from test_lt_launcher import POOL_LAUNCH, UDID, make_launcher, make_pool, make_request
from test_lt_payload import git

# "What a job that really serves a task looks like": path in the document -> value, for a pinned launch.
HYPEREXECUTE_FACTS: list[tuple[str, Any]] = [
    ("version", "0.2"),
    ("autosplit", True),
    ("runson", "android"),
    ("concurrency", 1),
    ("testDiscovery.type", "raw"),
    ("testDiscovery.mode", "static"),
    ("testRunnerCommand", "bash run-worker.sh"),
    ("frameworkStatusOnly", True),
    ("dynamicAllocation", True),
    ("shell", "bash"),
    ("pre", ["bash setup.sh"]),
    ("post", ["bash cleanup.sh"]),
    ("alwaysRunPostSteps", True),
    ("framework.name", "raw"),
    ("framework.args.devices", [".*-.*"]),
    ("framework.args.fixedIP", UDID),
    ("framework.args.privateCloud", True),
    ("framework.args.isRealMobile", True),
    ("framework.args.platformName", "android"),
    ("framework.args.region", "us"),
    ("framework.args.queueTimeout", 600),
    ("framework.args.reservation", False),
    ("framework.args.disableReleaseDevice", True),
    ("framework.args.video", False),
    ("framework.args.liveVideo", False),
    ("framework.args.deviceLogs", True),
    ("framework.args.buildName", "a55-perf"),
    ("runtime", [{"language": "python", "version": "3.12"}, {"language": "java", "version": "17"},
                 {"language": "node", "version": "20"}]),
    ("differentialUpload", {"enabled": True, "ttlHours": 360}),
    ("globalTimeout", 90),
]


def at(document: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        document = document[part]
    return document


def uploaded(fake_cli: FakeCli) -> dict[str, Any]:
    return json.loads(fake_cli.record()["yaml"])


def test_the_uploaded_yaml_holds_every_hyperexecute_fact(context: PluginContext, fake_cli: FakeCli) -> None:
    assert make_launcher(context, fake_cli).launch(make_request()).ok
    document = uploaded(fake_cli)
    wrong = [(path, at(document, path), value) for path, value in HYPEREXECUTE_FACTS if at(document, path) != value]
    assert wrong == []
    assert "jobLabel" not in document  # labels: --labels only
    assert fake_cli.record()["argv"][3:5] == ["--labels", f"tcdp,a55-perf,{UDID}"]
    # testDiscovery prints one line: one scenario, so one worker per job
    assert document["testDiscovery"]["command"] == "echo taskcluster-worker"


def test_a_selector_launch_has_a_device_pattern_and_no_fixed_ip(context: PluginContext, fake_cli: FakeCli) -> None:
    pool = make_pool(udids=(), selector=Selector("Galaxy A55 5G", "14"), targeting="selector")
    assert make_launcher(context, fake_cli).launch(make_request(pool, udid="")).ok
    args = uploaded(fake_cli)["framework"]["args"]
    assert args["devices"] == ["Galaxy A55 5G-14"] and "fixedIP" not in args
    assert fake_cli.record()["argv"][4] == "tcdp,a55-perf"  # the launch names no phone: no empty label


def test_region_and_runtime_are_launch_options(context: PluginContext, fake_cli: FakeCli) -> None:
    pool = make_pool(launch={**POOL_LAUNCH, "region": "eu", "runtime": {"python": "3.11", "java": 21}})
    assert make_launcher(context, fake_cli).launch(make_request(pool)).ok
    document = uploaded(fake_cli)
    assert document["framework"]["args"]["region"] == "eu"
    assert document["runtime"] == [{"language": "python", "version": "3.11"}, {"language": "java", "version": "21"}]


def test_no_template_can_turn_the_facts_off(context: PluginContext, fake_cli: FakeCli, tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "job-template.json").write_text(json.dumps({
        "version": "0.1", "autosplit": False, "runson": "linux", "concurrency": 4, "frameworkStatusOnly": False,
        "dynamicAllocation": False, "shell": "sh", "testRunnerCommand": "bash mine.sh", "alwaysRunPostSteps": False,
        "framework": {"name": "appium", "args": {"privateCloud": False, "isRealMobile": False, "reservation": True,
                                                 "disableReleaseDevice": False, "fixedIP": "SOMEONE-ELSE",
                                                 "platformName": "ios", "video": True}},
    }))
    pool = make_pool(udids=(), selector=Selector("Galaxy A55 5G", "14"), targeting="selector",
                     launch={**POOL_LAUNCH, "payload": str(payload)})
    assert make_launcher(context, fake_cli).launch(make_request(pool, udid="")).ok
    document = uploaded(fake_cli)
    forced = {path: value for path, value in HYPEREXECUTE_FACTS if path in (
        "version", "autosplit", "runson", "concurrency", "frameworkStatusOnly", "dynamicAllocation", "shell",
        "alwaysRunPostSteps",
        "framework.name", "framework.args.privateCloud", "framework.args.isRealMobile",
        "framework.args.platformName", "framework.args.reservation", "framework.args.disableReleaseDevice")}
    assert {path: at(document, path) for path in forced} == forced
    assert "fixedIP" not in document["framework"]["args"]  # a selector launch is never pinned by a template
    assert document["framework"]["args"]["video"] is True and document["testRunnerCommand"] == "bash mine.sh"


def test_job_label_is_refused_in_a_template_by_check_and_launch(
    context: PluginContext, fake_cli: FakeCli, tmp_path: Path
) -> None:
    for value in (["high"], "medium", ["tcdp", "a55-perf"]):
        payload = tmp_path / f"p-{len(str(value))}"
        payload.mkdir()
        template = json.loads((builtin_payload() / "job-template.json").read_text())
        (payload / "job-template.json").write_text(json.dumps({**template, "jobLabel": value}))
        pool = make_pool(launch={**POOL_LAUNCH, "payload": str(payload)})
        launcher = make_launcher(context, fake_cli)
        line = f"payload {payload}: job-template.json sets jobLabel, which is refused: labels go only through --labels"
        assert launcher.check([pool], network=False) == [f"pool a55-perf: {line}"]
        result = launcher.launch(make_request(pool, launch_id=payload.name))
        assert not result.ok and result.detail == line
    assert not fake_cli.ran()


def test_job_label_or_our_variables_in_a_pools_launch_table_are_refused(
    context: PluginContext, fake_cli: FakeCli
) -> None:
    pool = make_pool(launch={**POOL_LAUNCH, "jobLabel": ["low"],
                             "env": {"TC_VERSION": "99.0.0", "MINE": "1", "PAYLOAD_TEST_ROOT": "/tmp"}})
    launcher = make_launcher(context, fake_cli)
    assert launcher.check([pool], network=False) == [
        "pool a55-perf: launch.jobLabel is refused: labels go only through --labels",
        "pool a55-perf: launch.env.TC_VERSION is set by the launcher itself (use the launch options, e.g. "
        "tc_version, idle_timeout)",
        "pool a55-perf: launch.env.PAYLOAD_TEST_ROOT is for the payload's tests only",
    ]
    result = launcher.launch(make_request(pool))
    assert not result.ok and result.detail == "launch.jobLabel is refused: labels go only through --labels"
    assert not fake_cli.ran()


def sections(text: str) -> dict[str, str]:
    """The dry run's text: its first two lines, then each `--- name ... ---` section."""
    head, *rest = text.split("\n--- ")
    parts = {"head": head}
    for part in rest:
        title, _, body = part.partition(" ---\n")
        parts[title.split()[0]] = body
    return parts


def test_render_shows_the_command_yaml_and_runner_with_secrets_masked(
    context: PluginContext, fake_cli: FakeCli, tmp_path: Path
) -> None:
    launcher = make_launcher(context, fake_cli)
    before = sorted(tmp_path.rglob("*"))
    temp_before = sorted(Path(tempfile.gettempdir()).glob("provisioner-payload-*"))
    text = launcher.render(make_request())
    assert sorted(tmp_path.rglob("*")) == before  # nothing written (not even the state dir)
    assert sorted(Path(tempfile.gettempdir()).glob("provisioner-payload-*")) == temp_before
    assert not fake_cli.ran()
    for secret in SECRETS:
        assert secret not in text
    parts = sections(text)
    assert parts["head"] == (
        f"dry run: launch L1 for pool a55-perf on {UDID}\n"
        f"command: {fake_cli.path} --no-track --disable-updates --labels tcdp,a55-perf,{UDID} "
        f"--config {context.state_dir / 'jobs' / 'L1' / 'hyperexecute.yaml'}"
    )
    document = json.loads(parts["hyperexecute.yaml"])
    assert document["env"]["TASKCLUSTER_ACCESS_TOKEN"] == "***" and document["env"]["TASKCLUSTER_CLIENT_ID"] == TC_CLIENT
    assert all(at(document, path) == value for path, value in HYPEREXECUTE_FACTS)
    runner = json.loads(parts["worker-runner"])
    assert parts["task"] == ("/home/ltuser/taskcluster/script.py <- the payload's script.py (sha256 "
                             f"{hashlib.sha256((builtin_payload() / 'script.py').read_bytes()).hexdigest()})")  # its section
    assert runner["provider"]["accessToken"] == runner["workerConfig"]["accessToken"] == "***"
    assert runner["getSecrets"] is False and runner["provider"]["workerID"] == UDID
    assert runner["workerConfig"]["ed25519SigningKeyLocation"] == "/home/ltuser/taskcluster/ed25519.key"
    # launch() in dry run gives the same text and submits nothing
    result = launcher.launch(make_request(dry_run=True))
    assert result.ok and result.detail == text and not fake_cli.ran()
    assert TC_TOKEN not in result.detail


def test_render_works_without_the_secrets_and_for_a_launch_naming_no_phone(
    context: PluginContext, fake_cli: FakeCli
) -> None:
    context.environ = {"PATH": context.environ["PATH"]}
    pool = make_pool(udids=(), selector=Selector("Galaxy A55 5G", "14"), targeting="selector")
    parts = sections(make_launcher(context, fake_cli).render(make_request(pool, udid="")))
    assert parts["head"].startswith("dry run: launch L1 for pool a55-perf on any matching phone\n")
    assert json.loads(parts["hyperexecute.yaml"])["env"]["TASKCLUSTER_CLIENT_ID"] == "<TC_CLIENT_A55 is not set>"
    assert json.loads(parts["worker-runner"])["provider"]["workerID"] == "<the phone's adb serial>"


def test_render_of_a_git_payload_leaves_no_cache_behind(context: PluginContext, fake_cli: FakeCli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(builtin_payload(), repo)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    git(repo, "tag", "v1")
    pool = make_pool(launch={**POOL_LAUNCH, "payload": str(repo), "payload_ref": "v1"})
    text = make_launcher(context, fake_cli).render(make_request(pool))
    assert json.loads(sections(text)["hyperexecute.yaml"])["version"] == "0.2"
    assert not (context.state_dir / "payloads").exists()


def test_check_network_runs_the_clis_validate_on_each_pools_masked_yaml(
    context: PluginContext, fake_cli: FakeCli, logs: list[str]
) -> None:
    context.job_tag = "provisioner"
    launcher = make_launcher(context, fake_cli)
    assert launcher.check([make_pool()], network=True) == []
    record = fake_cli.record()
    assert record["argv"][1:4] == ["--disable-updates", "--validate", "--config"]
    document = json.loads(record["yaml"])
    assert document["env"]["TASKCLUSTER_ACCESS_TOKEN"] == "***" and document["version"] == "0.2"
    assert {"setup.sh", "hyperexecute.yaml"} <= set(record["files"])
    assert not Path(record["cwd"]).exists()  # the temporary directory is gone
    assert fake_cli.record()["argv"][fake_cli.record()["argv"].index("--config") + 1].startswith(record["cwd"])
    fake_cli.mode = "invalid"
    (line,) = launcher.check([make_pool()], network=True)
    assert line.startswith("pool a55-perf: hyperexecute --validate exited with status 1 on the rendered yaml: ")
    assert "framework.args.region; key ***" in line
    assert launcher.check([make_pool()], network=False) == []  # offline: the CLI is not run
    for secret in SECRETS:
        assert all(secret not in text for text in (line, *logs))


def test_check_network_says_so_when_the_cli_has_no_validate(
    context: PluginContext, fake_cli: FakeCli, logs: list[str]
) -> None:
    fake_cli.mode = "no-validate"
    pools = [make_pool(), make_pool(name="other")]
    assert make_launcher(context, fake_cli).check(pools, network=True) == []
    said = [line for line in logs if "--validate" in line]
    assert len(said) == 1 and "the CLI has no --validate flag: the rendered yaml was not validated" in said[0]


def test_the_pools_idle_timeout_reaches_the_worker_and_the_launch_option_is_the_fallback() -> None:
    from provisioner_lambdatest.options import POOL_OPTIONS
    from provisioner_lambdatest.render import worker_env

    launch = {k: o.default for k, o in POOL_OPTIONS.items()} | dict(POOL_LAUNCH)
    assert worker_env(make_request(), launch, "c", "t")["TC_IDLE_TIMEOUT"] == str(launch["idle_timeout"])
    pool = make_pool(idle_timeout=240)
    assert worker_env(make_request(pool), launch, "c", "t")["TC_IDLE_TIMEOUT"] == "240"


def test_check_and_launch_refuse_a_release_whose_worker_keys_are_unknown(context: PluginContext, fake_cli: FakeCli) -> None:
    launcher = make_launcher(context, fake_cli)
    line = ("launch.tc_version '99.0.0': the plugin does not know generic-worker's config keys of that release "
            "(known: 87.0.0, 106.0.0); a key it does not know makes the worker exit 64")
    pool = make_pool(launch={**POOL_LAUNCH, "tc_version": "99.0.0"})
    assert launcher.check([pool], network=False) == [f"pool a55-perf: {line}"]
    result = launcher.launch(make_request(pool))
    assert not result.ok and result.detail == line and not fake_cli.ran()
    assert launcher.check([make_pool(launch={**POOL_LAUNCH, "tc_version": "106.0.0"})], network=False) == []


def test_check_refuses_a_runner_template_key_the_pinned_release_does_not_know(
    context: PluginContext, fake_cli: FakeCli, tmp_path: Path
) -> None:
    payload = tmp_path / "payload"
    shutil.copytree(builtin_payload(), payload)
    template = (payload / "worker-runner.yaml.template").read_text()
    (payload / "worker-runner.yaml.template").write_text(
        template.replace('"certificate": "",', '"capacity": 1,\n    "certificate": "",'))
    launcher = make_launcher(context, fake_cli)
    pool = make_pool(launch={**POOL_LAUNCH, "payload": str(payload)})
    assert launcher.check([pool], network=False) == [
        f"pool a55-perf: payload {payload}: worker-runner.yaml.template sets workerConfig.capacity, which "
        "generic-worker v87.0.0 does not know (it would exit 64 at start-up)"]
    assert launcher.check([make_pool(launch={**pool.launch, "tc_version": "106.0.0"})], network=False) == []


def test_the_shipped_runner_template_holds_only_keys_of_every_known_release() -> None:
    from provisioner_lambdatest.workerconfig import GENERIC_WORKER_KEYS, template_keys, unknown_keys

    runner = template_keys((builtin_payload() / "worker-runner.yaml.template").read_text())
    assert {version: unknown_keys(runner, version) for version in GENERIC_WORKER_KEYS} == {"87.0.0": [], "106.0.0": []}
    # worker-config.md: v87 is v106 without capacity, with checkForNewDeploymentEverySecs and deploymentId
    v87, v106 = GENERIC_WORKER_KEYS["87.0.0"], GENERIC_WORKER_KEYS["106.0.0"]
    assert v106 - v87 == {"capacity"} and v87 - v106 == {"checkForNewDeploymentEverySecs", "deploymentId"}
    assert len(v106) == 58 and {"wstAudience", "d2gConfig", "loopbackVideoDeviceNumber"} <= v106


def test_check_refuses_a_global_timeout_that_cannot_hold_a_job(context: PluginContext, fake_cli: FakeCli) -> None:
    launcher = make_launcher(context, fake_cli)
    assert launcher.check([make_pool()], network=False) == []  # 10 + 10 + 60 + 5 = 85 min <= 90
    pool = make_pool(idle_timeout=1200)  # the pool's idle timeout wins over the launch option
    line = ("launch.global_timeout 90 min cannot hold a job: setup_minutes 10 + idle timeout 1200 s + task_minutes "
            "60 + reboot_wait 300 s = 95 min")
    assert launcher.check([pool], network=False) == [f"pool a55-perf: {line}"]
    result = launcher.launch(make_request(pool))
    assert not result.ok and result.detail == line and not fake_cli.ran()
    roomy = make_pool(idle_timeout=1200, launch={**POOL_LAUNCH, "global_timeout": 95})
    assert launcher.check([roomy], network=False) == []
    short = make_pool(launch={**POOL_LAUNCH, "task_minutes": 30, "global_timeout": 55, "reboot_wait": 600})
    (refused,) = launcher.check([short], network=False)
    assert refused.endswith("task_minutes 30 + reboot_wait 600 s = 60 min")
    assert make_request(short).pool.launch["reboot_wait"] == 600


def test_a_group_pool_is_refused_by_check_and_launch(context: PluginContext, fake_cli: FakeCli) -> None:
    pool = make_pool(targeting="group", udids=(UDID, "R5CX00000002"))
    launcher = make_launcher(context, fake_cli)
    line = ('targeting "group" is not offered: a HyperExecute job names one phone or a selector, never a group '
            '(pin the phones, or use targeting "selector")')
    assert launcher.check([pool], network=False) == [f"pool a55-perf: {line}"]
    result = launcher.launch(make_request(pool, udid=""))
    assert not result.ok and result.detail == line
    assert not fake_cli.ran()
