"""What a launch uploads, rendered: the job's hyperexecute.yaml and the worker-runner config its worker starts with.

The yaml follows the project's reference ("What a job that really serves a task looks like") key by key: the
HyperExecute facts below are laid over the payload's template, so no template can turn them off. The document is
written as JSON text, which is valid YAML 1.2: no YAML library is needed.

The worker-runner config is rendered on the phone's host by the payload's ``run-worker.sh`` (the phone's serial
is only known there); ``fill_runner`` does the same substitution here, for the dry run, and a payload test keeps
the two in step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from provisioner import LaunchRequest, Pool

from .workerconfig import version_problem

ANY_DEVICE = ".*-.*"
REGEX_SPECIALS = set(".^$*+?()[]{}|\\")
WORKER_GROUP = "lambda"

# The reference's HyperExecute facts for one Android phone per job, forced over the template.
JOB_FACTS: dict[str, Any] = {
    "version": "0.2",  # `framework` exists only from 0.2; 0.1's runson has no android
    "autosplit": True,
    "runson": "android",
    "concurrency": 1,
    "frameworkStatusOnly": True,  # raw jobs have no test session to take a status from
    "dynamicAllocation": True,
    "shell": "bash",
    "alwaysRunPostSteps": True,  # `post` (the phone's reboot) runs even when the scenario failed (release 2.1.6)
}
ARGS_FACTS: dict[str, Any] = {
    "privateCloud": True,
    "isRealMobile": True,
    "platformName": "android",
    "reservation": False,
    "disableReleaseDevice": True,
}
# Production's values, which a payload's template may change.
JOB_DEFAULTS: dict[str, Any] = {
    "testDiscovery": {"type": "raw", "mode": "static", "command": "echo taskcluster-worker"},  # one line: one task
    "differentialUpload": {"enabled": True, "ttlHours": 360},
    "framework": {"args": {"video": False, "liveVideo": False, "deviceLogs": True}},
}
# Keys no template or pool may set: labels go through `--labels` only (production's way). `jobLabel`'s merge
# with --labels is undocumented, and its values high/medium/low set the job's priority.
REFUSED_KEYS = ("jobLabel",)
KEY_ORDER = ("version", "autosplit", "runson", "concurrency", "testDiscovery", "testRunnerCommand",
             "frameworkStatusOnly", "dynamicAllocation", "shell", "runtime", "pre", "post", "alwaysRunPostSteps", "env", "framework",
             "differentialUpload", "globalTimeout")

PLACEHOLDER = re.compile(r"@(json:)?([A-Z][A-Z0-9_]*)@")
JSON_LITERAL = re.compile(r"[0-9]+|true|false")


class RenderError(ValueError):
    """A document that cannot be rendered; the message is one line without secret."""


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on it; nested mappings merge, anything else in ``over`` wins."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _escape(text: str) -> str:
    return "".join("\\" + c if c in REGEX_SPECIALS else c for c in text)


def device_pattern(request: LaunchRequest) -> str:
    """HyperExecute's ``<model>-<os version>`` device pattern: any phone when pinned, else the pool's selector."""
    selector = request.pool.selector
    if request.udid or selector is None:
        return ANY_DEVICE
    return f"{_escape(selector.model) or '.*'}-{_escape(selector.os_version) or '.*'}"


def worker_ids(queue: str, worker_type: str) -> dict[str, str]:
    """Taskcluster names from the pool's queue id ``<provisionerId>/<workerType>``."""
    provisioner_id, _, queue_type = queue.rpartition("/")
    return {
        "TC_WORKER_POOL_ID": queue,
        "TC_PROVISIONER_ID": provisioner_id,
        "TC_WORKER_TYPE": worker_type or queue_type,
        "TC_WORKER_GROUP": WORKER_GROUP,
    }


def _flag(value: bool) -> str:
    return "true" if value else "false"


def worker_env(request: LaunchRequest, launch: Mapping[str, Any], client_id: str, token: str) -> dict[str, str]:
    """The job's ``env``: the pool's extra variables, then the worker's identity and settings (ours win).

    ``TC_WORKER_ID`` is empty for a launch that names no phone: ``run-worker.sh`` then takes the phone's serial.
    """
    env = {str(k): str(v) for k, v in launch["env"].items()}
    env.update(worker_ids(request.pool.queue, launch["worker_type"]))
    env.update(
        TASKCLUSTER_ROOT_URL=launch["root_url"],
        TASKCLUSTER_CLIENT_ID=client_id,
        TASKCLUSTER_ACCESS_TOKEN=token,
        TC_WORKER_ID=request.udid,
        TC_VERSION=launch["tc_version"],
        TC_ALLOW_UNPINNED=_flag(launch["allow_unpinned_downloads"]),
        TC_IDLE_TIMEOUT=str(idle_timeout_of(request.pool, launch)),
        TC_GET_SECRETS=_flag(launch["get_secrets"]),
        TC_WST_AUDIENCE=launch["wst_audience"],
        TC_WST_SERVER_URL=launch["wst_server_url"],
        TC_REBOOT_WAIT=str(launch["reboot_wait"]),
    )
    return env


# The variables worker_env sets itself: a pool's `env` may not set them (it would be silently overridden).
OWN_ENV = frozenset(
    {"TASKCLUSTER_ROOT_URL", "TASKCLUSTER_CLIENT_ID", "TASKCLUSTER_ACCESS_TOKEN", "TC_WORKER_ID", "TC_VERSION",
     "TC_ALLOW_UNPINNED", "TC_IDLE_TIMEOUT", "TC_GET_SECRETS", "TC_WST_AUDIENCE", "TC_WST_SERVER_URL",
     "TC_WORKER_POOL_ID", "TC_PROVISIONER_ID", "TC_WORKER_TYPE", "TC_WORKER_GROUP", "TC_REBOOT_WAIT"}
)
TEST_ONLY_ENV = frozenset({"PAYLOAD_TEST_ROOT"})  # moves the payload's fixed host paths: its sandbox tests only


def idle_timeout_of(pool: Pool, launch: Mapping[str, Any]) -> int:
    """The worker's idleTimeoutSecs: the pool's ``idle_timeout``, else the launch option."""
    return int(pool.idle_timeout if pool.idle_timeout is not None else launch["idle_timeout"])


def timeout_problem(launch: Mapping[str, Any], idle_timeout: int) -> str:
    """Why ``globalTimeout`` cannot hold one job ("" when it can). A job runs setup (``setup_minutes``), then
    waits for a task up to ``idle_timeout`` seconds, runs it up to ``task_minutes``, and reboots the phone in
    ``post`` waiting up to ``reboot_wait`` seconds; a job cut short by globalTimeout may skip the reboot."""
    needed = launch["setup_minutes"] * 60 + idle_timeout + launch["task_minutes"] * 60 + launch["reboot_wait"]
    if launch["global_timeout"] * 60 >= needed:
        return ""
    return (f"launch.global_timeout {launch['global_timeout']} min cannot hold a job: setup_minutes "
            f"{launch['setup_minutes']} + idle timeout {idle_timeout} s + task_minutes {launch['task_minutes']} + "
            f"reboot_wait {launch['reboot_wait']} s = {-(-needed // 60)} min")


def launch_problems(launch: Mapping[str, Any], pool: Pool) -> list[str]:
    """What is wrong in a pool's launch table (beyond the types the host checks), one line each."""
    problems = [f"launch.{key} is refused: labels go only through --labels" for key in REFUSED_KEYS if key in launch]
    if pool.targeting == "group":
        problems.append('targeting "group" is not offered: a HyperExecute job names one phone or a selector, '
                        "never a group (pin the phones, or use targeting \"selector\")")
    env = launch.get("env") or {}
    problems += [
        f"launch.env.{name} is set by the launcher itself (use the launch options, e.g. tc_version, idle_timeout)"
        for name in sorted(OWN_ENV & set(env))
    ]
    problems += [f"launch.env.{name} is for the payload's tests only" for name in sorted(TEST_ONLY_ENV & set(env))]
    problems += [line for line in (version_problem(str(launch["tc_version"])),
                                   timeout_problem(launch, idle_timeout_of(pool, launch))) if line]
    if not isinstance(launch.get("runtime"), Mapping) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in launch["runtime"].values()
    ):
        problems.append("launch.runtime must map each language to a version, e.g. { python = \"3.12\" }")
    return problems


def template_problems(template: Mapping[str, Any]) -> list[str]:
    """What a payload's job template may not say, one line each."""
    return [f"sets {key}, which is refused: labels go only through --labels" for key in REFUSED_KEYS if key in template]


def job_document(
    template: Mapping[str, Any], request: LaunchRequest, launch: Mapping[str, Any], env: Mapping[str, str]
) -> dict[str, Any]:
    """The hyperexecute.yaml document of one launch. ``launch`` is the pool's launch table, ``env`` the worker's."""
    problems = template_problems(template) + launch_problems(launch, request.pool)
    if problems:
        raise RenderError(problems[0])
    args: dict[str, Any] = {
        "devices": [device_pattern(request)],
        **ARGS_FACTS,
        "region": launch["region"],
        "queueTimeout": launch["queue_timeout"],
        "buildName": launch["build_name"] or request.pool.name,
    }
    if request.udid:
        args["fixedIP"] = request.udid  # pins the job to this phone; a selector launch has none
    overlay = {
        **JOB_FACTS,
        "runtime": [{"language": str(k), "version": str(v)} for k, v in launch["runtime"].items()],
        "env": dict(env),
        "framework": {"name": "raw", "args": args},
        "globalTimeout": launch["global_timeout"],
    }
    document = merge(merge(JOB_DEFAULTS, template), overlay)
    if "fixedIP" not in args:
        document["framework"]["args"].pop("fixedIP", None)  # never from the template either
    document["framework"] = {"name": "raw", **document["framework"]}  # name first, for readers
    return {**{key: document[key] for key in KEY_ORDER if key in document}, **document}


def dump(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def fill_runner(template: str, env: Mapping[str, str]) -> str:
    """The worker-runner config from its template, as ``run-worker.sh`` renders it on the phone's host.

    ``@NAME@`` becomes the variable's value escaped for a JSON string (it stands inside quotes);
    ``@json:NAME@`` becomes the value as a bare JSON literal, which must be digits, ``true`` or ``false``.
    """
    def value(match: re.Match[str]) -> str:
        name = match.group(2)
        text = env.get(name)
        if text is None:
            raise RenderError(f"runner template: variable {name} is not set")
        if any(ord(c) < 0x20 for c in text):
            raise RenderError(f"runner template: variable {name} holds a control character")
        if match.group(1):
            if not JSON_LITERAL.fullmatch(text):
                raise RenderError(f"runner template: variable {name} must be digits, true or false")
            return text
        return json.dumps(text, ensure_ascii=False)[1:-1]

    return PLACEHOLDER.sub(value, template)
