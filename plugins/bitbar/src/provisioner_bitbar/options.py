"""The keys of ``[plugins.bitbar]`` (one table: the device provider and the launcher are one object) and of a
pool's ``launch`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner import ConfigError, Option, validate_options

URL = "https://mozilla-v3.bitbar.com"  # Mozilla's current server (mbd config/config-v3-server.yml)
API_PATH = "/api/v2"  # TDPY and TDJ; mbd's comments also show /cloud/api/v2 (unverified: facts §7)
IMAGE_IDLE_TIMEOUT = 5400  # idleTimeoutSecs baked into the docker image (mozilla-bitbar-docker e66679a)
QUEUE_PREFIX = "proj-autophone/"  # the image hard-codes provisionerId proj-autophone
MIB = 1024 * 1024

OPTIONS: dict[str, Option] = {
    "url": Option(str, URL, "the Bitbar server (also sent to the run as bitbar_cloud_url)"),
    "api_path": Option(str, API_PATH, "the API's path on the server"),
    "apikey_env": Option(str, "TESTDROID_APIKEY", "variable holding the API key (an admin of the private cloud)",
                         env=True),
    "allow_http": Option(bool, False, "call a plain-http url on a host that is not loopback (the key in clear)"),
    "connect_timeout": Option((int, float), 10.0, "seconds to connect", min=0.1, max=300),
    "read_timeout": Option((int, float), 30.0, "seconds to wait for an answer", min=0.1, max=600),
    "request_timeout": Option((int, float), 30.0, "seconds one try may take, connect, headers and body together",
                              min=0.5, max=600),
    "post_timeout": Option((int, float), 60.0, "seconds one POST runs may take (never retried)", min=1, max=600),
    "time_budget": Option((int, float), 60.0, "seconds one read (all its tries and pages) may take", min=1, max=3600),
    "retries": Option(int, 2, "extra tries of a read on 5xx, 429 and connection errors", min=0, max=10),
    "retry_backoff": Option((int, float), 1.0, "seconds before the first retry of a read, doubled each time",
                            min=0, max=60),
    "max_body_bytes": Option(int, 16 * MIB, "largest answer read, in bytes", min=1024, max=256 * MIB),
    "page_size": Option(int, 100, "rows asked per page", min=1, max=1000),
    "max_pages": Option(int, 20, "pages read per list at most (more: the list is unknown)", min=1, max=1000),
    "phone_group_prefix": Option(str, "", "a pinned phone's one-device group is this + the phone's name; "
                                 "empty: '<job_tag>-'"),
    "ignore_devices": Option(list, ["Docker Builder"], "device names never reported as phones"),
    "stuck_seconds": Option(int, 1800, "a phone CLEANING or DIRTY for longer than this is unavailable",
                            min=60, max=86400),
    "session_reads": Option(int, 20, "device-session reads per jobs() call at most", min=0, max=200),
    "resolve_every": Option(int, 3600, "seconds between two look-ups of the ids a launch needs", min=60, max=86400),
}

POOL_OPTIONS: dict[str, Option] = {
    "client_id": Option(str, help="TASKCLUSTER_CLIENT_ID of the pool's workers (not secret)"),
    "access_token_env": Option(str, "TASKCLUSTER_ACCESS_TOKEN", "variable holding the workers' Taskcluster token",
                               env=True),
    "docker_image_version": Option(str, help="DOCKER_IMAGE_VERSION: the image Bitbar built (e.g. 20250304T123621)"),
    "worker_type": Option(str, "", "TC_WORKER_TYPE; empty: the part of the pool's queue after '/'"),
    "worker_conf": Option(str, "gecko-t-ap", "TC_WORKER_CONF (sent as mbd does)"),
    "framework": Option(str, "mozilla-usb", "the Bitbar framework's name (made by the vendor, never by us)"),
    "test_file": Option(str, "v3-empty-test.zip", "name of the RUN_TEST file on the server"),
    "application_file": Option(str, "v3-testdroid-sample-app.apk", "name of the INSTALL file on the server"),
    "device_group": Option(str, "", "group mode (a launch naming no phone): the Bitbar device group to run on"),
    "timeout": Option(int, 0, "the run's timeout in seconds (mbd sends 0)", min=0, max=7 * 86400),
    "env": Option(dict, {}, "extra, non-secret test-run parameters"),
    "project_type": Option(str, "APPIUM_ANDROID_SERVER_SIDE", "type of a project bitbar-setup creates"),
    "archiving_strategy": Option(str, "DAYS", "archivingStrategy of a project bitbar-setup creates",
                                 ("NEVER", "DAYS", "RUNS")),
    "archiving_item_count": Option(int, 7, "archivingItemCount of a project bitbar-setup creates", min=0, max=100_000),
}

OWN_PARAMETERS = ("bitbar_cloud_url", "DOCKER_IMAGE_VERSION", "TC_WORKER_CONF", "TASKCLUSTER_CLIENT_ID",
                  "TC_WORKER_TYPE", "TASKCLUSTER_ACCESS_TOKEN")  # the launcher's own testRunParameters


def filled(options: Mapping[str, Option], given: Mapping[str, Any], what: str = "plugins.bitbar") -> dict[str, Any]:
    """``given`` validated and completed with the defaults (the host does this for the daemon; tests, commands
    and a pool's launch table go through here too). Raises ``provisioner.ConfigError``."""
    return validate_options(dict(given), options, "", what)


def problem_text(error: ConfigError) -> str:
    """A ``ConfigError`` of a table checked here, on one line: ``key: reason; ...``."""
    return "; ".join(f"{p.key}: {p.reason}" for p in error.problems) or str(error)
