"""The keys each role accepts: ``[plugins.lambdatest]``, ``[plugins.hyperexecute]`` and a pool's ``launch`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner import Option

DEVICES_URL = "https://mobile-api.lambdatest.com/mobile-automation/api/v1/privatecloud_devices"
JOBS_URL = "https://api.hyperexecute.cloud/v1.0/jobs"
TASKCLUSTER_ROOT_URL = "https://firefox-ci-tc.services.mozilla.com"
# Firefox-CI's production values: defaults that another deployment changes in its pools' launch tables.
TC_VERSION = "87.0.0"  # production's pin; the insecure engine's release assets are confirmed up to v106 only
WST_AUDIENCE = "firefoxcitc"
WST_SERVER_URL = "https://firefoxci-websocktunnel.services.mozilla.com/"
RUNTIME = {"python": "3.12", "java": "17", "node": "20"}  # what the task harness needs on the phone's host
OLD_TOOL_TAG = "tcdp"  # the job tag of the devicepool tool Mozilla runs in production today
MIB = 1024 * 1024
# Sane bounds of the device provider's numbers (inclusive): a value outside them stops the plugin from starting.
PROVIDER_BOUNDS: dict[str, tuple[float, float, str]] = {
    "connect_timeout": (0.1, 300.0, "seconds"),
    "read_timeout": (0.1, 600.0, "seconds"),
    "request_timeout": (0.5, 600.0, "seconds"),
    "max_body_bytes": (1024, 256 * MIB, "bytes"),
    "retries": (0, 10, "tries"),
    "retry_backoff": (0.0, 60.0, "seconds"),
    "time_budget": (1.0, 3600.0, "seconds"),
    "jobs_page_size": (1, 1000, "jobs"),
    "jobs_max_pages": (1, 1000, "pages"),
}

CREDENTIALS = {
    "username_env": Option(str, "LT_USERNAME", "variable holding the LambdaTest username (the short one)", env=True),
    "access_key_env": Option(str, "LT_ACCESS_KEY", "variable holding the LambdaTest access key", env=True),
}

PROVIDER_OPTIONS: dict[str, Option] = {
    **CREDENTIALS,
    "devices_url": Option(str, DEVICES_URL, "private cloud device list endpoint"),
    "jobs_url": Option(str, JOBS_URL, "HyperExecute job list endpoint"),
    "allow_http": Option(bool, False, "call a plain-http devices_url or jobs_url on a host that is not loopback "
                         "(basic auth then travels in clear text)"),
    "connect_timeout": Option((int, float), 10.0, "seconds to connect"),
    "read_timeout": Option((int, float), 30.0, "seconds to wait for an answer"),
    "request_timeout": Option((int, float), 30.0, "seconds one try may take, connect, headers and body together"),
    "max_body_bytes": Option(int, 16 * MIB, "largest answer read, in bytes (a larger one is refused unread)"),
    "retries": Option(int, 2, "extra tries on 5xx, 429 and connection errors"),
    "retry_backoff": Option((int, float), 1.0, "seconds before the first retry, doubled each time"),
    "time_budget": Option((int, float), 60.0, "seconds one read (all its tries and pages) may take in all"),
    "jobs_page_size": Option(int, 100, "jobs asked per page"),
    "jobs_max_pages": Option(int, 20, "pages read per call at most"),
    "old_tool_retired": Option(
        bool, False, f"the old devicepool tool no longer runs on this account: job_tag {OLD_TOOL_TAG!r} is allowed"
    ),
}

LAUNCHER_OPTIONS: dict[str, Option] = {
    **CREDENTIALS,
    "cli": Option(str, "hyperexecute", "path of the HyperExecute CLI, or a name looked up on PATH"),
    "cli_timeout": Option((int, float), 300.0, "seconds before a hung CLI is killed"),
    "job_dir_max_age_days": Option((int, float), 7.0, "job directories older than this are removed"),
}

POOL_OPTIONS: dict[str, Option] = {
    "payload": Option(str, "", "payload directory or git repository; empty: the payload shipped with the plugin"),
    "payload_ref": Option(str, "", "tag or commit SHA of a git payload (required for git, never a branch)"),
    "root_url": Option(str, TASKCLUSTER_ROOT_URL, "Taskcluster root URL given to the worker"),
    "client_id_env": Option(str, "TASKCLUSTER_CLIENT_ID", "variable holding the worker's Taskcluster client id", env=True),
    "access_token_env": Option(
        str, "TASKCLUSTER_ACCESS_TOKEN", "variable holding the worker's Taskcluster access token", env=True
    ),
    "access_token_secret": Option(
        str, "", "name of a LambdaTest secret holding the access token; set, no token is uploaded"
    ),
    "worker_type": Option(str, "", "worker type; empty: the part of the pool's queue id after '/'"),
    "queue_timeout": Option(int, 600, "seconds the cloud waits for the phone (framework.args.queueTimeout)"),
    "global_timeout": Option(int, 90, "minutes a job may run (globalTimeout); check refuses one shorter than "
                             "setup_minutes + the idle timeout + task_minutes + reboot_wait"),
    "setup_minutes": Option(int, 10, "minutes the job's setup (pre) may take, for the global_timeout bound"),
    "task_minutes": Option(int, 60, "longest run time of the pool's tasks (their maxRunTime), in minutes, for the "
                           "global_timeout bound"),
    "reboot_wait": Option(int, 300, "seconds post waits for the rebooted phone (cleanup.sh), counted in the "
                          "global_timeout bound"),
    "build_name": Option(str, "", "framework.args.buildName; empty: the pool's name"),
    "env": Option(dict, {}, "extra, non-secret environment variables for the worker"),
    "region": Option(str, "us", "framework.args.region: where the private cloud is (the default region is undocumented)"),
    "runtime": Option(dict, RUNTIME, "language -> version installed on the phone's host (the yaml's runtime)"),
    "tc_version": Option(str, TC_VERSION, "Taskcluster release of the worker binaries (needs checksums in the payload)"),
    "allow_unpinned_downloads": Option(
        bool, False, "let setup download files that the payload's checksums.sha256 does not list (unsafe)"
    ),
    "idle_timeout": Option(int, 600, "seconds the worker waits for a task before it exits (idleTimeoutSecs); the pool's own `idle_timeout` wins"),
    "get_secrets": Option(bool, False, "worker-runner reads secret worker-pool:<pool> (needs a scope lambda workers lack)"),
    "wst_audience": Option(str, WST_AUDIENCE, "websocktunnel audience of the deployment (wstAudience)"),
    "wst_server_url": Option(str, WST_SERVER_URL, "websocktunnel server of the deployment (wstServerURL)"),
}


def with_defaults(options: Mapping[str, Option], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` completed with the declared defaults (the host already does this; tests and callers may not)."""
    filled = {key: option.default for key, option in options.items() if not option.required}
    filled.update(given)
    return filled


def bounds_problems(role: str, options: Mapping[str, Any], bounds: Mapping[str, tuple[float, float, str]]) -> list[str]:
    """One line per option outside its declared bounds."""
    return [
        f"{role}: option {name} must be {_number(low)} to {_number(high)} {unit}, not {options[name]!r}"
        for name, (low, high, unit) in bounds.items()
        if isinstance(options[name], bool) or not low <= options[name] <= high
    ]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
