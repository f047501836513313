"""The built-in simulated fleet passes the plugin contract suites of ``provisioner.testing``."""

from __future__ import annotations

from typing import Any

from provisioner import PluginContext, Pool, Selector
from provisioner.sim.plugin import SimDeviceProvider, SimLauncher, SimQueueSource
from provisioner.testing import DeviceProviderContract, JobLauncherContract, QueueSourceContract

QUEUES = ("proj/perf", "proj/unit")
OPTIONS: dict[str, Any] = {
    "seed": 3, "phones": 6, "models": ["A55", "A51"], "os_versions": ["14"], "udid_prefix": "SIM",
    "queues": {"proj/perf": {"burst": 4}}, "upload_seconds": 1.0, "list_lag_seconds": 0.0, "startup_seconds": 30.0,
}
FAIL_ALL = [{"start": 0, "end": 10**9, "endpoints": ["counts", "workers", "phones", "jobs"], "kind": "error"}]


def options(**changes: Any) -> dict[str, Any]:
    from provisioner.sim.plugin import OPTIONS as DECLARED

    return {**{k: o.default for k, o in DECLARED.items()}, **OPTIONS, **changes}


class TestSimQueueSource(QueueSourceContract):
    queues = QUEUES

    def make_source(self, context: PluginContext) -> SimQueueSource:
        return SimQueueSource(options(), context)

    def make_failing_source(self, context: PluginContext) -> SimQueueSource:
        return SimQueueSource(options(faults=FAIL_ALL), context)


class TestSimDeviceProvider(DeviceProviderContract):
    def make_provider(self, context: PluginContext) -> SimDeviceProvider:
        return SimDeviceProvider(options(), context)

    def make_broken_provider(self, context: PluginContext) -> SimDeviceProvider:
        return SimDeviceProvider(options(faults=FAIL_ALL), context)


class TestSimLauncher(JobLauncherContract):
    def make_launcher(self, context: PluginContext) -> SimLauncher:
        return SimLauncher(options(), context)

    def make_provider(self, context: PluginContext) -> SimDeviceProvider:
        return SimDeviceProvider(options(), context)  # the same fleet: the context shares it

    def make_failing_launcher(self, context: PluginContext) -> SimLauncher:
        return SimLauncher(options(launch_failure_rate=1.0), context)

    def make_pool(self, context: PluginContext, targeting: str) -> Pool | None:
        common = dict(queue="proj/perf", queue_source="sim", device_provider="sim", launcher="sim")
        if targeting == "pinned":
            return Pool(name="perf", udids=("SIM0001",), **common)
        if targeting == "group":  # the cloud picks one of the members
            return Pool(name="perf", udids=("SIM0001", "SIM0002"), targeting="group", **common)
        if targeting == "selector":
            return Pool(name="perf", selector=Selector(model="A55"), targeting="selector", **common)
        return None
