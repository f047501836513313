"""Constants and helpers shared by the Bitbar plugin's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from provisioner import PluginContext, Pool, VirtualClock
from provisioner.testing import make_context

from bb_shapes import NOW

APIKEY = "bb-apikey-0123456789abcdefghij"
TOKEN = "tc-token-A55-0123456789abcdefghij"
SECRETS = (APIKEY, TOKEN)
ENVIRON = {"TESTDROID_APIKEY": APIKEY, "gecko_t_bitbar_gw_perf_a55": TOKEN}
LAUNCH = {"client_id": "project/autophone/gecko-t-bitbar-perf-a55", "access_token_env": "gecko_t_bitbar_gw_perf_a55",
          "docker_image_version": "20250304T123621", "worker_type": "gecko-t-bitbar-gw-perf-a55"}


def mask_token(request: Any) -> Any:
    """Before anything is written: the Taskcluster token in a launch body becomes ``***`` (for re-recording)."""
    try:
        body = json.loads(request.body or b"")
    except (ValueError, TypeError):
        return request
    if isinstance(body, dict) and isinstance(body.get("testRunParameters"), list):
        for item in body["testRunParameters"]:
            if isinstance(item, dict) and item.get("key") == "TASKCLUSTER_ACCESS_TOKEN":
                item["value"] = "***"
        request.body = json.dumps(body).encode()
    return request


def launch_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: two ``POST runs`` match only with the same JSON body, the token masked in both."""
    if r1.method == "POST" and r1.path.endswith("/runs"):
        assert mask_token(_copy(r1)).body == mask_token(_copy(r2)).body


def _copy(request: Any) -> Any:
    import copy

    return copy.deepcopy(request)


def bb_context(tmp_path: Path, **fields: Any) -> PluginContext:
    return make_context(tmp_path, environ=fields.pop("environ", ENVIRON), clock=VirtualClock(NOW), **fields)


def pool(name: str = "bb-a55-perf", udids: tuple[str, ...] = ("a55-33", "a55-34", "a55-35", "a55-52"),
         targeting: str = "pinned", **launch: Any) -> Pool:
    return Pool(name, "proj-autophone/gecko-t-bitbar-gw-perf-a55", "taskcluster", "bitbar", "bitbar", udids=udids,
                targeting=targeting, launch={**LAUNCH, **launch}, idle_timeout=5400)


def group_pool() -> Pool:
    return pool("bb-a55-group", ("a55-33", "a55-34", "a55-35", "a55-52", "a55-57", "a55-58"), "group",
                device_group="a55-perf")


class Refused(requests.adapters.BaseAdapter):
    """Every request: the connection is refused (nothing sent)."""

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise requests.ConnectionError("connection refused")

    def close(self) -> None:
        pass
