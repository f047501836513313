"""Hook implementations of the built-in ``sim`` plugin (registered by the host, whatever entry points say).

Example config::

    [plugins.sim]
    seed = 7
    phones = 40
    models = ["Galaxy A55 5G", "Pixel 6"]
    os_versions = ["14", "13"]
    queues = { "proj-autophone/gecko-t-lambda-perf-a55" = { burst = 60, per_hour = 30 } }

    [pools.a55-perf]
    queue = "proj-autophone/gecko-t-lambda-perf-a55"
    queue_source = "sim"
    device_provider = "sim"
    launcher = "sim"
    selector = { model = "Galaxy A55 5G" }
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loguru import logger

from provisioner import (
    LaunchRequest, LaunchResult, Option, Phone, PluginContext, Pool, QueueCounts, RemoteError, RemoteJob, RoleSpec, Worker,
    hookimpl,
)
from .config import FleetConfig
from .fleet import Fleet

NAME = "sim"
SHARED_KEY = "provisioner.sim.fleet"

_D = FleetConfig()
SECONDS = (int, float)
OPTIONS: dict[str, Option] = {
    "seed": Option(int, _D.seed, "seed of the simulation's random draws (same seed, same run)"),
    "phones": Option(int, _D.phones, "how many phones the simulated cloud has"),
    "models": Option(list, list(_D.models), "model names, cycled across the phones"),
    "os_versions": Option(list, list(_D.os_versions), "OS versions, cycled across the phones"),
    "udid_prefix": Option(str, _D.udid_prefix, "phones are named <prefix>0000, <prefix>0001, ..."),
    "queues": Option(
        dict, {}, "tasks per queue id: {burst = <tasks present at start>, per_hour = <steady arrival rate>}; "
        "other queues stay empty",
    ),
    "upload_seconds": Option(SECONDS, _D.upload_seconds, "how long a launch call takes (the CLI uploads the job)"),
    "startup_seconds": Option(
        SECONDS, _D.startup_seconds, "a job is `initiated` this long (the cloud prepares its phone), then `running`",
    ),
    "pre_seconds": Option(
        SECONDS, _D.pre_seconds, "a `running` job's pre step installs the worker this long before it polls the queue",
    ),
    "idle_timeout_seconds": Option(
        SECONDS, _D.idle_timeout_seconds, "a worker that finds no task waits this long, then its job ends wasted (a pool's `idle_timeout` "
        "overrides it)",
    ),
    "task_seconds": Option(SECONDS, _D.task_seconds, "how long a task runs"),
    "post_seconds": Option(SECONDS, _D.post_seconds, "a job's post step (phone reboot) lasts this long after its worker"),
    "cleanup_seconds": Option(SECONDS, _D.cleanup_seconds, "a phone is listed `cleanup` this long after a job ended"),
    "list_lag_seconds": Option(
        SECONDS, _D.list_lag_seconds, "the device list keeps saying idle this long after a job took the phone",
    ),
    "launch_failure_rate": Option(SECONDS, _D.launch_failure_rate, "share of submissions that fail (0..1)"),
    "quarantined": Option(list, [], "UDIDs quarantined in every queue (their workers claim nothing)"),
    "faulty": Option(list, [], "UDIDs listed faulty (jobs pinned to them fail)"),
    "faults": Option(
        list, [], "windows of failing remote calls: [{start, end, endpoints, kind = error|timeout|garbage, rate, "
        "timeout_seconds, went_through}], times in seconds after start",
    ),
}


def shared_fleet(options: Mapping[str, Any], context: PluginContext) -> Fleet:
    """The fleet the three roles share, created on first use from the ``[plugins.sim]`` table."""
    fleet = context.shared.get(SHARED_KEY)
    if fleet is None:
        config = FleetConfig.from_options(options)
        fleet = context.shared[SHARED_KEY] = Fleet(config, context.clock, context.job_tag)
        logger.info(
            "simulated fleet: {} phones, {} queues with tasks, seed {}", config.phones, len(config.queues), config.seed,
        )
    return fleet


class _SimRole:
    """What the three roles have in common: the shared fleet, ``check`` and ``close``."""

    def __init__(self, options: Mapping[str, Any], context: PluginContext) -> None:
        self.fleet = shared_fleet(options, context)

    def check(self, pools: Sequence[Pool], network: bool) -> list[str]:
        return []

    def close(self) -> None:
        """Nothing to release: the fleet lives in memory."""


class SimQueueSource(_SimRole):
    """Counts and worker records, read fresh each call; ``None`` per queue when the (simulated) call fails."""

    def counts(self, queues: Sequence[str]) -> Mapping[str, QueueCounts | None]:
        try:
            return self.fleet.counts(queues)
        except RemoteError as exc:
            logger.warning("{}", exc)
            return {queue: None for queue in queues}

    def workers(self, queues: Sequence[str]) -> Mapping[str, Sequence[Worker] | None]:
        try:
            return self.fleet.workers(queues)
        except RemoteError as exc:
            logger.warning("{}", exc)
            return {queue: None for queue in queues}


class SimDeviceProvider(_SimRole):
    def phones(self) -> Sequence[Phone]:
        return self.fleet.phones()

    def jobs(self, since: float) -> Sequence[RemoteJob]:
        return self.fleet.jobs(since)

    def check(self, pools: Sequence[Pool], network: bool) -> list[str]:
        return self.fleet.check([p for p in pools if p.device_provider == NAME])


class SimLauncher(_SimRole):
    def launch(self, request: LaunchRequest) -> LaunchResult:
        try:
            return self.fleet.launch(request)
        except RemoteError as exc:
            return LaunchResult(ok=False, detail=str(exc))


@hookimpl
def provisioner_queue_sources() -> Iterable[RoleSpec]:
    yield RoleSpec(NAME, SimQueueSource, OPTIONS, description="simulated Taskcluster queues (offline demo)")


@hookimpl
def provisioner_device_providers() -> Iterable[RoleSpec]:
    yield RoleSpec(NAME, SimDeviceProvider, OPTIONS, description="simulated cloud of phones (offline demo)")


@hookimpl
def provisioner_job_launchers() -> Iterable[RoleSpec]:
    yield RoleSpec(NAME, SimLauncher, OPTIONS, description="simulated job launcher (offline demo)")
