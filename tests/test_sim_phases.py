"""Issue 10: on the real cloud a job is `running` for minutes while its pre step installs the worker, before the
worker claims a task. The simulated fleet must show it, so that a policy which stops counting a launch as
covering a pending task once its job runs (rather than once its worker has claimed) wastes launches there.

Two small policies drive the fleet by hand on the shipped shared-burst scenario (two pools sharing 30 phones,
20 tasks): one stops covering at `running` (what the host did), the other covers until the queue's worker
records show the launch's worker has claimed (what the host is being changed to do). On a simulator whose
workers claim the moment their job runs, both would waste nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from provisioner import JobState, LaunchRequest, PhoneState, Pool, RemoteJob, Selector, Worker
from provisioner.clock import VirtualClock
from provisioner.sim.fleet import Fleet, FleetConfig
from provisioner.simulate.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
TAG = "tcdp"


class Launched:
    """A launch the policy made: its job, pool and phone, and the phone's worker record just before."""

    def __init__(self, job_id: str, pool: Pool, udid: str, before: Worker | None) -> None:
        self.job_id, self.pool, self.udid, self.before = job_id, pool, udid, before


Covers = Callable[[Launched, RemoteJob, "dict[str, Worker]"], bool]


def stops_at_running(launch: Launched, job: RemoteJob, workers: dict[str, Worker]) -> bool:
    """The host before issue 10: a launch covers a task while its job is starting."""
    return job.state is JobState.STARTING


def until_claimed(launch: Launched, job: RemoteJob, workers: dict[str, Worker]) -> bool:
    """A launch covers a task until its worker has claimed one (its record changed) or its job ended."""
    return job.state is not JobState.ENDED and workers.get(launch.udid) == launch.before


def drive(covers: Covers, interval: float = 30.0, pacing: float = 2.0) -> dict:
    """Every ``interval``: read counts, worker records, phones and jobs; launch, pinned to idle phones nobody of
    ours holds, one job per pending task not covered, pools by priority. Returns the fleet's stats."""
    scenario = load_scenario("shared-burst", (SCENARIOS,))
    clock = VirtualClock()
    fleet = Fleet(FleetConfig.from_options(scenario.sim), clock, TAG)
    pools = sorted(
        (Pool(name, t["queue"], "sim", "sim", "sim", selector=Selector(**t["selector"]), priority=t.get("priority", 0))
         for name, t in scenario.pools.items()),
        key=lambda p: -p.priority,
    )
    start, made = clock.now(), []
    while clock.now() - start < scenario.duration:
        began = clock.now()
        counts = fleet.counts([p.queue for p in pools])
        records = fleet.workers([p.queue for p in pools])
        jobs = {j.job_id: j for j in fleet.jobs(start)}
        held = {j.udid for j in jobs.values() if j.state is not JobState.ENDED}
        for pool in pools:
            workers = {w.worker_id: w for w in records[pool.queue]}
            covered = sum(1 for m in made if m.pool is pool and covers(m, jobs[m.job_id], workers))
            want = counts[pool.queue].pending - covered
            for phone in fleet.phones():
                if want <= 0:
                    break
                if phone.state is PhoneState.IDLE and pool.owns(phone) and phone.udid not in held:
                    labels = (TAG, pool.name, phone.udid)
                    result = fleet.launch(LaunchRequest(f"l{len(made)}", pool, phone.udid, labels))
                    made.append(Launched(result.job_id, pool, phone.udid, workers.get(phone.udid)))
                    held.add(phone.udid)
                    want -= 1
                    clock.advance(pacing)
        clock.advance(max(0.0, began + interval - clock.now()))
    return fleet.stats()


def test_a_policy_that_stops_covering_at_running_wastes_launches_on_shared_phones():
    stats = drive(stops_at_running)
    assert stats["tasks_created"] == stats["tasks_claimed"] == 20
    assert stats["wasted"] > 0  # a simulator that claims the moment a job runs shows none
    assert (stats["launches"], stats["wasted"]) == (30, 10)  # the figures: 30 launches for 20 tasks
    assert stats["double_bookings"] == 0


def test_covering_until_the_worker_has_claimed_wastes_nothing():
    stats = drive(until_claimed)
    assert stats["tasks_created"] == stats["tasks_claimed"] == 20
    assert (stats["launches"], stats["wasted"], stats["double_bookings"]) == (20, 0, 0)
