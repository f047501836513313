"""The built-in sim plugin: its hooks, its options, and the fleet its three roles share."""

from __future__ import annotations

import pluggy

from provisioner import JobState, LaunchRequest, Option, PluginContext, Pool, QueueCounts, Selector
from provisioner.clock import VirtualClock
from provisioner.hookspecs import PROJECT, ProvisionerSpecs
from provisioner.sim import plugin
from provisioner.sim.fleet import FleetConfig
from provisioner.types import DeviceProvider, JobLauncher, QueueSource

Q = "proj-autophone/gecko-t-lambda-perf-a55"


def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ProvisionerSpecs)
    pm.register(plugin, name="sim")
    return pm


def specs() -> dict[str, object]:
    hook = manager().hook
    return {
        "queue": [s for group in hook.provisioner_queue_sources() for s in group],
        "provider": [s for group in hook.provisioner_device_providers() for s in group],
        "launcher": [s for group in hook.provisioner_job_launchers() for s in group],
    }


def defaults() -> dict[str, object]:
    return {key: option.default for key, option in plugin.OPTIONS.items()}


def test_three_roles_named_sim_with_the_same_documented_options():
    found = specs()
    assert [[s.name for s in role] for role in found.values()] == [["sim"], ["sim"], ["sim"]]
    options = [role[0].options for role in found.values()]
    assert options[0] is options[1] is options[2]
    for key, option in plugin.OPTIONS.items():
        assert isinstance(option, Option) and option.help and not option.required, key
    assert {"seed", "phones", "models", "os_versions", "udid_prefix", "queues", "upload_seconds", "startup_seconds",
            "pre_seconds", "idle_timeout_seconds", "task_seconds", "post_seconds", "cleanup_seconds",
            "list_lag_seconds", "launch_failure_rate", "quarantined", "faulty", "faults"} == set(plugin.OPTIONS)


def test_declared_defaults_are_the_fleet_defaults():
    assert FleetConfig.from_options(defaults()) == FleetConfig()


def test_the_three_roles_share_one_fleet_through_context_shared():
    found = specs()
    clock = VirtualClock()
    context = PluginContext(clock=clock, job_tag="tcdp")
    options = defaults() | {"queues": {Q: {"burst": 2}}, "phones": 3}
    queues = found["queue"][0].factory(options, context)
    phones = found["provider"][0].factory(options, context)
    launcher = found["launcher"][0].factory(options, context)
    assert isinstance(queues, QueueSource) and isinstance(phones, DeviceProvider)
    assert isinstance(launcher, JobLauncher)
    assert queues.fleet is phones.fleet is launcher.fleet is context.shared[plugin.SHARED_KEY]

    pool = Pool("a55", Q, "sim", "sim", "sim", udids=("SIM0000",))
    result = launcher.launch(LaunchRequest("l1", pool, "SIM0000", ("tcdp", "a55", "SIM0000")))
    assert result.ok
    (job,) = phones.jobs(clock.now())
    assert (job.job_id, job.pool, job.udid, job.state) == (result.job_id, "a55", "SIM0000", JobState.STARTING)
    clock.advance(60 + 150)  # initiated, then running while pre installs the worker, which then claims
    assert queues.counts([Q]) == {Q: QueueCounts(1, 1)}
    (worker,) = queues.workers([Q])[Q]
    assert (worker.worker_id, worker.first_claim) == ("SIM0000", clock.now())
    assert len(phones.phones()) == 3


def test_another_context_gets_another_fleet():
    found = specs()
    a, b = PluginContext(clock=VirtualClock()), PluginContext(clock=VirtualClock())
    assert found["queue"][0].factory(defaults(), a).fleet is not found["queue"][0].factory(defaults(), b).fleet


def test_check_and_close():
    context = PluginContext(clock=VirtualClock())
    provider = plugin.SimDeviceProvider(defaults(), context)
    launcher = plugin.SimLauncher(defaults(), context)
    pools = [
        Pool("a55", Q, "sim", "sim", "sim", udids=("SIM0000", "NOPE")),
        Pool("other", Q, "taskcluster", "lambdatest", "hyperexecute", udids=("ELSEWHERE",)),
        Pool("pixels", Q, "sim", "sim", "sim", selector=Selector(model="Pixel 6"), targeting="selector"),
    ]
    assert provider.check(pools, network=False) == [
        "pool a55: phone NOPE is not in the simulated fleet",
        "pool pixels: selector Pixel 6/* matches no phone of the simulated fleet",
    ]
    assert launcher.check(pools, network=True) == []
    provider.close()
    launcher.close()
