"""Fault windows of the simulated fleet: errors, garbage, and hangs that cost their timeout in clock time."""

from __future__ import annotations

import re

import pytest

from provisioner import LaunchRequest, PluginContext, Pool, QueueCounts, RemoteError
from provisioner.clock import VirtualClock
from provisioner.sim import plugin
from provisioner.sim.fleet import Fleet, FleetConfig

Q = "proj/perf"
TAG = "tcdp"
START = 1_750_000_000.0
POOL = Pool("perf", Q, "sim", "sim", "sim")


def make(*faults: dict, **options) -> tuple[Fleet, VirtualClock]:
    clock = VirtualClock(START)
    options.setdefault("phones", 4)
    return Fleet(FleetConfig.from_options({**options, "faults": list(faults)}), clock, TAG), clock


def request(udid: str = "SIM0000", n: int = 0) -> LaunchRequest:
    return LaunchRequest(f"l{n}", POOL, udid, (TAG, POOL.name, udid))


def test_an_error_window_fails_every_endpoint_then_ends():
    fleet, clock = make({"start": 10, "end": 20})
    assert fleet.counts([Q]) == {Q: QueueCounts(0, 0)}
    clock.advance(10)
    for call in (lambda: fleet.counts([Q]), lambda: fleet.workers([Q]), fleet.phones, lambda: fleet.jobs(0),
                 lambda: fleet.launch(request())):
        with pytest.raises(RemoteError, match="HTTP 503"):
            call()
    assert clock.now() == START + 10  # an error answers at once
    clock.advance(10)
    assert len(fleet.phones()) == 4
    stats = fleet.stats()
    assert stats["faults"] == {"counts": 1, "workers": 1, "phones": 1, "jobs": 1, "launch": 1}
    assert stats["calls"]["phones"] == 2 and stats["launches"] == 0
    assert [(when - START, endpoint) for when, endpoint, _ in fleet.fault_log()][:2] == [(10, "counts"), (10, "workers")]


def test_a_timeout_costs_its_time_on_the_clock_then_fails():
    fleet, clock = make({"start": 0, "end": 100, "endpoints": ["phones"], "kind": "timeout", "timeout_seconds": 45})
    with pytest.raises(RemoteError, match="no answer within 45 s"):
        fleet.phones()
    assert clock.now() == START + 45
    assert fleet.counts([Q]) == {Q: QueueCounts(0, 0)}  # other endpoints answer


def test_garbage_is_a_remote_error_naming_the_endpoint():
    fleet, _ = make({"start": 0, "end": 5, "endpoints": ["jobs"], "kind": "garbage"})
    with pytest.raises(RemoteError, match="sim: jobs: answered garbage"):
        fleet.jobs(0)


def test_a_timed_out_launch_may_still_reach_the_cloud():
    fleet, clock = make({"start": 0, "end": 1000, "endpoints": ["launch"], "kind": "timeout", "timeout_seconds": 60,
                         "went_through": 1.0})
    with pytest.raises(RemoteError):
        fleet.launch(request())
    (job,) = fleet.jobs(0)
    assert job.udid == "SIM0000" and job.created_at == START + 60  # the job exists, the caller heard nothing
    fleet2, _ = make({"start": 0, "end": 1000, "endpoints": ["launch"], "kind": "timeout", "went_through": 0.0})
    with pytest.raises(RemoteError):
        fleet2.launch(request())
    assert fleet2.jobs(0) == []


def test_a_rate_fails_some_calls_the_same_way_for_the_same_seed():
    def failures(seed: int) -> list[bool]:
        fleet, _ = make({"start": 0, "end": 100, "rate": 0.5}, seed=seed)
        out = []
        for _ in range(40):
            try:
                fleet.counts([Q])
                out.append(False)
            except RemoteError:
                out.append(True)
        return out

    assert failures(1) == failures(1)
    assert 5 < sum(failures(1)) < 35


def test_the_plugin_roles_turn_faults_into_unknown_counts_and_failed_launches():
    context = PluginContext(clock=VirtualClock(START), environ={}, job_tag=TAG)
    options = {"phones": 2, "faults": [{"start": 0, "end": 10}]}
    source = plugin.SimQueueSource(options, context)
    launcher = plugin.SimLauncher(options, context)
    assert source.counts([Q]) == {Q: None}
    assert source.workers([Q, "other"]) == {Q: None, "other": None}
    result = launcher.launch(request())
    assert not result.ok and "HTTP 503" in result.detail
    context.clock.advance(10)
    assert source.workers([Q]) == {Q: []}  # read fresh each call: known again once the window ends


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("x", "faults[0]"),
        ({"start": 1}, "faults[0].end"),
        ({"start": 5, "end": 1}, "ends (1) before it starts (5)"),
        ({"start": 0, "end": 1, "kind": "fire"}, "faults[0].kind"),
        ({"start": 0, "end": 1, "endpoints": ["tasks"]}, "unknown endpoint 'tasks'"),
        ({"start": 0, "end": 1, "rate": 2}, "faults[0].rate"),
        ({"start": 0, "end": 1, "when": 2}, "faults[0].when"),
    ],
)
def test_bad_fault_windows_name_the_key(fault, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        FleetConfig.from_options({"faults": [fault]})
    with pytest.raises(ValueError, match="faults"):
        FleetConfig.from_options({"faults": {"start": 0}})
