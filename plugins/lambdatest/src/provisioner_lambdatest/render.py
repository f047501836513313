"""The job's hyperexecute.yaml: the payload's template with the launch's own fields laid over it.

The document is written as JSON text, which is valid YAML 1.2: no YAML library is needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from provisioner import LaunchRequest

ANY_DEVICE = ".*-.*"
REGEX_SPECIALS = set(".^$*+?()[]{}|\\")
DEFAULT_DISCOVERY = {"type": "raw", "mode": "static", "command": "echo taskcluster-worker"}


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
        "TC_WORKER_GROUP": "lambda",
    }


def job_document(
    template: Mapping[str, Any], request: LaunchRequest, launch: Mapping[str, Any], env: Mapping[str, str]
) -> dict[str, Any]:
    """The hyperexecute.yaml document of one launch. ``launch`` is the pool's launch table, ``env`` the worker's."""
    args: dict[str, Any] = {
        "devices": [device_pattern(request)],
        "privateCloud": True,
        "isRealMobile": True,
        "platformName": "android",
        "queueTimeout": launch["queue_timeout"],
        "reservation": False,
        "disableReleaseDevice": True,
        "buildName": launch["build_name"] or request.pool.name,
    }
    if request.udid:
        args["fixedIP"] = request.udid
    overlay = {
        "version": str(template.get("version", "0.1")),
        "runson": "android",
        "concurrency": 1,
        "testDiscovery": merge(DEFAULT_DISCOVERY, template.get("testDiscovery") or {}),
        "env": dict(env),
        "framework": {"name": "raw", "args": args},
        "globalTimeout": launch["global_timeout"],
        "jobLabel": list(request.labels),
    }
    return merge(template, overlay)


def dump(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"
