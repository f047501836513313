"""mbd's Bitbar configuration (``config/config-v3-server.yml``: ``projects`` with ``defaults``, ``device_groups``)
as a config.toml: one group pool per project that starts workers (``additional_parameters.TC_WORKER_TYPE``):
``targeting = "group"``, its phones the members of the project's device group and ``launch.device_group`` that
group, so Bitbar picks the phone as it does for mbd in production (pinning is a later step per pool: README).
Everything that cannot be carried over is one line of ``not_carried`` (the host's command puts the file's name
before each). Pure: no network, no file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from provisioner import ImportResult, name_problem

from .options import IMAGE_IDLE_TIMEOUT, URL

# mbd project key -> launch key (values carried as they are)
LAUNCH_KEYS = {"framework_name": "framework", "test_file": "test_file", "application_file": "application_file",
               "timeout": "timeout", "project_type": "project_type", "archivingStrategy": "archiving_strategy",
               "archivingItemCount": "archiving_item_count"}
# additional_parameters key -> launch key
PARAMETER_KEYS = {"TASKCLUSTER_CLIENT_ID": "client_id", "DOCKER_IMAGE_VERSION": "docker_image_version",
                  "TC_WORKER_CONF": "worker_conf"}
DROPPED = {
    "device_model": "the phone's own state replaces mbd's offline check by name prefix",
    "description": "the plugin does not set project descriptions",
}


def accepts(document: Any) -> bool:
    """mbd's Bitbar file: ``projects`` and ``device_groups`` tables, projects naming a ``device_group_name``."""
    if not isinstance(document, Mapping) or not isinstance(document.get("projects"), Mapping):
        return False
    if not isinstance(document.get("device_groups"), Mapping):
        return False
    return any(isinstance(p, Mapping) and "device_group_name" in p for p in document["projects"].values())


def convert(document: Any, source: str) -> ImportResult:
    projects: Mapping[str, Any] = document["projects"]
    groups: Mapping[str, Any] = document.get("device_groups") or {}
    defaults = projects.get("defaults") if isinstance(projects.get("defaults"), Mapping) else {}
    lost: list[str] = []
    algorithm = (document.get("devicepool_config") or {}).get("jobs_to_start_algorithm")
    if algorithm:
        lost.append(f"devicepool_config.jobs_to_start_algorithm {algorithm}: the host's planner decides")
    urls: set[str] = set()
    pools: list[str] = []
    taken: dict[str, str] = {}
    used: set[Any] = set()
    for name, raw in projects.items():
        if name == "defaults":
            continue
        where = f"projects.{name}"
        if not isinstance(raw, Mapping):
            lost.append(f"{where}: not a table")
            continue
        project = {**defaults, **raw}
        parameters = {**(defaults.get("additional_parameters") or {}), **(raw.get("additional_parameters") or {})}
        worker_type = parameters.get("TC_WORKER_TYPE")
        if not worker_type:
            lost.append(f"{where}: no additional_parameters.TC_WORKER_TYPE: mbd starts no workers for it")
            continue
        if name_problem(name):
            lost.append(f"{where}: {name_problem(name, 'pool name')}")
            continue
        group = project.get("device_group_name")
        used.add(group)
        members = [str(m) for m in (groups.get(group) or {})] if isinstance(group, str) else []
        udids = []
        for udid in members:
            if udid in taken:
                lost.append(f"{where}: phone {udid} is already pool {taken[udid]}'s; left out")
            elif name_problem(udid):
                lost.append(f"{where}: phone {udid!r}: {name_problem(udid, 'UDID')}")
            else:
                taken[udid] = name
                udids.append(udid)
        if not udids:
            lost.append(f"{where}: device group {group} names no phone: no pool (add phones, then import again)")
            continue
        launch = {"client_id": parameters.get("TASKCLUSTER_CLIENT_ID", ""),
                  "access_token_env": str(worker_type).replace("-", "_"), "device_group": str(group)}
        launch |= {PARAMETER_KEYS[k]: str(v) for k, v in parameters.items() if k in PARAMETER_KEYS}
        launch |= {LAUNCH_KEYS[k]: v for k, v in project.items() if k in LAUNCH_KEYS}
        env = {}
        for key, value in parameters.items():
            if key == "bitbar_cloud_url":
                urls.add(str(value))
            elif key not in PARAMETER_KEYS and key not in ("TC_WORKER_TYPE", "TASKCLUSTER_ACCESS_TOKEN"):
                env[str(key)] = str(value)
        if env:
            launch["env"] = env
        lost += _fixed(where, project)
        provisioner = project.get("taskcluster_provisioner_id", "proj-autophone")
        pools.append(_pool(name, f"{provisioner}/{worker_type}", udids, launch))
        lost.append(f"{where}: the project itself: runs go to a new project <job_tag>-{name} (bitbar-setup "
                    f"--apply makes it) on mbd's device group {group}, where Bitbar picks the phone as for mbd "
                    "(targeting = \"group\": a phone the host quarantines or holds may still be picked)")
    lost += [f"device_groups.{group}: no worker project uses it" for group in groups
             if group not in used and groups.get(group)]
    if len(urls) > 1:
        lost.append(f"bitbar_cloud_url differs between projects ({', '.join(sorted(urls))}); "
                    "one server per host: the first is used")
    url = sorted(urls)[0] if urls else URL
    head = [f"# Imported from mbd's Bitbar configuration {source} by provisioner-bitbar's devicepool-bitbar importer.",
            "# Group mode as in mbd: Bitbar picks each run's phone from the pool's device group.",
            "[provisioner]",
            "jobs_lookback_seconds = 21600  # a run may idle 90 min for a task, then run it",
            "adopt_clock_skew_seconds = 30  # run creation times are the Bitbar server's clock", "",
            "[plugins.bitbar]", f"url = {json.dumps(url)}", 'apikey_env = "TESTDROID_APIKEY"', ""]
    return ImportResult("\n".join(head + pools), tuple(lost))


def _fixed(where: str, project: Mapping[str, Any]) -> list[str]:
    lost = [f"{where}: {key}: {why}" for key, why in DROPPED.items() if key in project]
    if project.get("os_type", "ANDROID") != "ANDROID":
        lost.append(f"{where}: os_type {project['os_type']}: the plugin runs ANDROID only")
    if project.get("scheduler", "SINGLE") != "SINGLE":
        lost.append(f"{where}: scheduler {project['scheduler']}: every run is SINGLE (one phone)")
    known = {"device_group_name", "additional_parameters", "taskcluster_provisioner_id", "os_type", "scheduler",
             *LAUNCH_KEYS, *DROPPED}
    lost += [f"{where}: {key}: not known to the importer" for key in project if key not in known]
    return lost


def _pool(name: str, queue: str, udids: list[str], launch: Mapping[str, Any]) -> str:
    lines = [f"[pools.{name}]", f"queue = {json.dumps(queue)}", 'device_provider = "bitbar"', 'launcher = "bitbar"',
             'targeting = "group"  # as mbd: Bitbar picks the phone among launch.device_group\'s members',
             f"udids = [{', '.join(json.dumps(u) for u in udids)}]", f"idle_timeout = {IMAGE_IDLE_TIMEOUT}"]
    items = [f"{key} = {_value(value)}" for key, value in launch.items()]
    return "\n".join(lines + [f"launch = {{ {', '.join(items)} }}", ""])


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {json.dumps(str(v))}" for k, v in value.items()) + " }"
    return json.dumps(str(value))
