"""generic-worker's configuration keys per release, and what the runner file may hold.

generic-worker decodes its config with ``DisallowUnknownFields``: one key its release does not know and it exits
64 at start-up, so the job claims nothing (project reference, taskcluster/worker-config.md, from gwconfig at
v87.0.0 and v106.0.0). A ``tc_version`` whose key set is not listed here is refused: add its set, read from that
release's gwconfig/config.go and config_linux.go, before using it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# Every key generic-worker v106.0.0 knows on Linux (json names), config.go and config_linux.go.
_V106 = frozenset("""
accessToken allowedHighMemoryDurationSecs availabilityZone cachesDir capacity certificate cleanUpTaskDirs clientId
createObjectArtifacts disableOOMProtection disableReboots downloadsDir ed25519SigningKeyLocation enableChainOfTrust
enableInteractive enableLiveLog enableMetadata enableMounts enableOSGroups enableResourceMonitor
enableTaskclusterProxy idleTimeoutSecs instanceId instanceType interactivePort livelogExecutable livelogExposePort
livelogPortBase maxMemoryUsagePercent maxTaskRunTime minAvailableMemoryBytes numberOfTasksToRun privateIP
provisionerId publicIP region requiredDiskSpaceMegabytes rootURL runAfterUserCreation sentryProject
shutdownMachineOnIdle shutdownMachineOnInternalError taskclusterProxyExecutable taskclusterProxyPort tasksDir
workerGroup workerId workerLocation workerType workerTypeMetadata wstAudience wstServerURL
d2gConfig disableNativePayloads enableLoopbackAudio enableLoopbackVideo loopbackAudioDeviceNumber
loopbackVideoDeviceNumber
""".split())
# v87.0.0 (production's pin): v106's keys without `capacity` (added in v100), with the two v87 still had.
_V87 = (_V106 - {"capacity"}) | {"checkForNewDeploymentEverySecs", "deploymentId"}

GENERIC_WORKER_KEYS: Mapping[str, frozenset[str]] = {"87.0.0": _V87, "106.0.0": _V106}
# What generic-worker's Validate() refuses to start without (the same twelve in v87 and v106).
REQUIRED = ("accessToken", "cachesDir", "clientId", "downloadsDir", "ed25519SigningKeyLocation",
            "livelogExecutable", "provisionerId", "rootURL", "tasksDir", "workerGroup", "workerId", "workerType")
# worker-runner's top-level keys, all that exist.
RUNNER_KEYS = frozenset({"provider", "worker", "workerConfig", "logging", "getSecrets", "cacheOverRestarts"})

_JSON_PLACEHOLDER = re.compile(r"@json:[A-Z][A-Z0-9_]*@")


def version_problem(tc_version: str) -> str:
    """Why ``tc_version`` cannot be used ("" when its key set is known), naming the option."""
    if tc_version in GENERIC_WORKER_KEYS:
        return ""
    return (f"launch.tc_version {tc_version!r}: the plugin does not know generic-worker's config keys of that "
            f"release (known: {', '.join(GENERIC_WORKER_KEYS)}); a key it does not know makes the worker exit 64")


def template_keys(text: str) -> dict[str, Any]:
    """The runner template (JSON text with ``@NAME@`` placeholders) parsed, bare placeholders read as 0."""
    return json.loads(_JSON_PLACEHOLDER.sub("0", text))


def unknown_keys(runner: Mapping[str, Any], tc_version: str) -> list[str]:
    """The runner file's keys that worker-runner or generic-worker ``tc_version`` does not know, as key paths."""
    known = GENERIC_WORKER_KEYS[tc_version]
    config = runner.get("workerConfig")
    config = config if isinstance(config, Mapping) else {}
    return ([str(k) for k in sorted(set(runner) - RUNNER_KEYS)]
            + [f"workerConfig.{k}" for k in sorted(set(config) - known)])
