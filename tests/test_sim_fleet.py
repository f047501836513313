"""The simulated fleet's model, on a virtual clock (no sleep, no network)."""

from __future__ import annotations

import pytest

from provisioner import JobState, LaunchRequest, PhoneState, Pool, QueueCounts, Selector, Worker
from provisioner.clock import VirtualClock
from provisioner.sim.fleet import Fleet, FleetConfig

Q = "proj-autophone/gecko-t-lambda-perf-a55"
TAG = "tcdp"
START = 1_750_000_000.0


def make(**options) -> tuple[Fleet, VirtualClock]:
    """A small fleet; ``ready`` (launch until the worker polls) is all ``startup`` (no ``pre``, no ``post``)
    unless a test gives the phases."""
    clock = VirtualClock(START)
    options.setdefault("phones", 4)
    if "ready" in options:
        options["startup_seconds"], options["pre_seconds"] = options.pop("ready"), 0
        options.setdefault("post_seconds", 0)
    return Fleet(FleetConfig.from_options(options), clock, TAG), clock


def pool(name: str = "a55", queue: str = Q, selector: Selector | None = None) -> Pool:
    return Pool(name, queue, "sim", "sim", "sim", selector=selector, targeting="selector" if selector else "pinned")


def launch(fleet: Fleet, udid: str = "SIM0000", p: Pool | None = None, n: int = 0):
    p = p or pool()
    return fleet.launch(LaunchRequest(f"l{n}", p, udid, (TAG, p.name, udid)))


def state(fleet: Fleet, udid: str) -> tuple[PhoneState, str]:
    phone = next(p for p in fleet.phones() if p.udid == udid)
    return phone.state, phone.raw_state


def only_job(fleet: Fleet):
    (job,) = fleet.jobs(0)
    return job


def test_defaults_give_twenty_phones_of_two_models():
    fleet = Fleet(FleetConfig.from_options({}), VirtualClock(START))
    phones = fleet.phones()
    assert len(phones) == 20
    assert phones[0].udid == "SIM0000" and phones[0].model == "Galaxy A55 5G" and phones[0].os_version == "14"
    assert phones[1].model == "Galaxy A51" and phones[1].os_version == "11"
    assert all(p.state is PhoneState.IDLE and p.raw_state == "active" for p in phones)
    assert fleet.counts([Q]) == {Q: QueueCounts(0, 0)}


def test_defaults_are_production_timings():
    config = FleetConfig()
    assert (config.startup_seconds, config.pre_seconds) == (60, 150)  # 3.5 min from launch to claim
    assert (config.idle_timeout_seconds, config.post_seconds, config.upload_seconds) == (600, 60, 0)


def test_a_job_goes_initiated_running_pre_claimed_post_ended_cleanup_active():
    fleet, clock = make(queues={Q: {"burst": 1}}, startup_seconds=60, pre_seconds=150, task_seconds=600,
                        post_seconds=60, cleanup_seconds=30, list_lag_seconds=20)
    result = launch(fleet)
    assert result.ok and result.job_id and result.job_id in result.url
    assert only_job(fleet).state is JobState.STARTING
    clock.advance(20)
    assert state(fleet, "SIM0000") == (PhoneState.BUSY, "initiated")
    clock.advance(40)  # 60: the cloud says running; pre installs the worker, which has claimed nothing
    assert only_job(fleet).state is JobState.RUNNING
    assert state(fleet, "SIM0000") == (PhoneState.BUSY, "busy")
    assert fleet.counts([Q])[Q] == QueueCounts(1, 0) and fleet.workers([Q]) == {Q: []}
    clock.advance(149)
    assert fleet.counts([Q])[Q] == QueueCounts(1, 0)
    clock.advance(1)  # 210: the worker polls and claims
    assert fleet.counts([Q])[Q] == QueueCounts(0, 1)
    (worker,) = fleet.workers([Q])[Q]
    assert (worker.worker_id, worker.worker_group, worker.first_claim) == ("SIM0000", "lambda", START + 210)
    clock.advance(600)  # 810: the task is done; post reboots the phone, the job still runs
    assert fleet.counts([Q])[Q] == QueueCounts(0, 0)
    assert only_job(fleet).state is JobState.RUNNING
    clock.advance(60)
    job = only_job(fleet)
    assert (job.state, job.outcome, job.ended_at) == (JobState.ENDED, "completed", START + 870)
    assert state(fleet, "SIM0000") == (PhoneState.BUSY, "cleanup")
    clock.advance(30)
    assert state(fleet, "SIM0000") == (PhoneState.IDLE, "active")
    stats = fleet.stats()
    assert stats["completed"] == 1 and stats["wasted"] == 0 and stats["launches"] == 1
    assert stats["tasks"] == [(Q, START, START + 210)]


def test_a_task_created_while_the_worker_is_being_installed_waits_for_it():
    """What issue 10 was about: running is not claimed. A task waits while pre runs."""
    fleet, clock = make(startup_seconds=60, pre_seconds=150)
    launch(fleet)
    clock.advance(100)
    fleet.add_tasks(Q, 1)
    assert only_job(fleet).state is JobState.RUNNING and fleet.counts([Q])[Q] == QueueCounts(1, 0)
    clock.advance(110)
    assert fleet.counts([Q])[Q] == QueueCounts(0, 1)
    assert fleet.stats()["tasks"] == [(Q, START + 100, START + 210)]


def test_job_that_finds_no_task_idles_out_then_runs_post_and_is_wasted():
    fleet, clock = make(startup_seconds=60, pre_seconds=150, idle_timeout_seconds=600, post_seconds=60)
    launch(fleet)
    clock.advance(210 + 599)
    assert only_job(fleet).state is JobState.RUNNING
    clock.advance(1 + 59)
    assert only_job(fleet).state is JobState.RUNNING  # post
    clock.advance(1)
    job = only_job(fleet)
    assert (job.state, job.outcome, job.ended_at) == (JobState.ENDED, "wasted", START + 870)
    assert fleet.stats()["wasted"] == 1 and fleet.workers([Q]) == {Q: []}


def test_a_launch_call_lasts_the_upload_then_the_cloud_has_the_job():
    fleet, clock = make(upload_seconds=20)
    launch(fleet)
    assert clock.now() == START + 20 and only_job(fleet).created_at == START + 20


def test_waiting_worker_claims_a_task_that_arrives():
    fleet, clock = make(ready=10, idle_timeout_seconds=120)
    launch(fleet)
    clock.advance(100)
    fleet.add_tasks(Q, 2)
    assert fleet.counts([Q])[Q] == QueueCounts(1, 1)
    assert fleet.stats()["tasks"][0] == (Q, START + 100, START + 100)
    clock.advance(1000)
    assert only_job(fleet).outcome == "completed"


def test_device_list_lags_after_a_launch():
    fleet, clock = make(list_lag_seconds=60, startup_seconds=210)
    launch(fleet)
    clock.advance(59)
    assert state(fleet, "SIM0000") == (PhoneState.IDLE, "active")
    clock.advance(1)
    assert state(fleet, "SIM0000") == (PhoneState.BUSY, "initiated")
    assert state(fleet, "SIM0001") == (PhoneState.IDLE, "active")


def test_launch_on_a_taken_phone_is_blocked_until_the_phone_frees():
    fleet, clock = make(queues={Q: {"burst": 2}}, ready=200, task_seconds=600, cleanup_seconds=30)
    first = launch(fleet, n=1)
    clock.advance(10)
    second = launch(fleet, n=2)
    assert first.ok and second.ok and first.job_id != second.job_id
    stats = fleet.stats()
    assert stats["double_bookings"] == 1 and stats["jobs_starting"] == 2
    clock.advance(190)  # first claims; second still waits for the phone
    assert fleet.counts([Q])[Q] == QueueCounts(1, 1)
    clock.advance(600 + 30)  # first ends at 800, the phone frees at 830 and second starts its setup
    jobs = {j.job_id: j for j in fleet.jobs(0)}
    assert jobs[first.job_id].outcome == "completed"
    assert jobs[second.job_id].state is JobState.STARTING
    clock.advance(199)
    assert fleet.counts([Q])[Q] == QueueCounts(1, 0)
    clock.advance(1)
    assert fleet.counts([Q])[Q] == QueueCounts(0, 1)
    assert fleet.stats()["tasks"][1][2] == START + 1030


def test_launch_during_cleanup_waits_but_is_no_double_booking():
    fleet, clock = make(ready=10, idle_timeout_seconds=0, cleanup_seconds=30)
    launch(fleet, n=1)
    clock.advance(15)  # wasted at 10, cleaning until 40
    launch(fleet, n=2)
    assert fleet.stats()["double_bookings"] == 0
    assert [j.state for j in fleet.jobs(0)] == [JobState.ENDED, JobState.STARTING]
    clock.advance(25 + 10)
    assert [j.outcome for j in fleet.jobs(0)] == ["wasted", "wasted"]


def test_quarantined_phone_claims_nothing():
    fleet, clock = make(queues={Q: {"burst": 5}}, quarantined=["SIM0001"], ready=10, idle_timeout_seconds=60)
    quarantined = Worker("SIM0001", quarantined_until=START + 10 * 365 * 86400, worker_group="lambda")
    assert fleet.workers([Q, "other"]) == {Q: [quarantined], "other": [quarantined]}
    launch(fleet, "SIM0001")
    clock.advance(10)
    assert fleet.counts([Q])[Q] == QueueCounts(5, 0)
    clock.advance(60)
    assert only_job(fleet).outcome == "wasted"
    stats = fleet.stats()
    assert stats["quarantined_launches"] == 1 and stats["wasted"] == 1


def test_selector_launch_gets_an_idle_matching_phone():
    fleet, clock = make(phones=6, queues={Q: {"burst": 3}}, ready=10)
    a51 = pool("a51", selector=Selector(model="Galaxy A51"))
    launch(fleet, "", a51)
    job = only_job(fleet)
    assert job.udid in {"SIM0001", "SIM0003", "SIM0005"} and job.pool == "a51"
    clock.advance(10)
    assert fleet.counts([Q])[Q] == QueueCounts(2, 1)


def test_selector_launch_waits_for_a_matching_phone():
    fleet, clock = make(phones=2, ready=10, idle_timeout_seconds=20, cleanup_seconds=5)
    a51 = pool("a51", selector=Selector(model="Galaxy A51", os_version="11"))
    launch(fleet, "", a51, n=1)
    launch(fleet, "", a51, n=2)
    first, second = fleet.jobs(0)
    assert first.udid == "SIM0001" and second.udid == "" and second.state is JobState.STARTING
    launch(fleet, "SIM0000", n=3)  # the other model's phone frees first: the selector job keeps waiting
    clock.advance(30)  # both wasted at 30; SIM0001 frees at 35
    assert fleet.jobs(0)[1].udid == ""
    clock.advance(5)
    assert fleet.jobs(0)[1].udid == "SIM0001"
    assert fleet.stats()["launches"] == 3


def test_selector_matching_anything():
    fleet, _ = make(phones=1)
    launch(fleet, "", pool(selector=Selector()))
    assert only_job(fleet).udid == "SIM0000"


def test_unknown_phone_and_failures_and_dry_run():
    fleet, _ = make(launch_failure_rate=1.0)
    bad = launch(fleet, "NOPE")
    assert not bad.ok and "NOPE" in bad.detail
    failed = launch(fleet)
    assert not failed.ok and "simulated" in failed.detail
    p = pool()
    dry = fleet.launch(LaunchRequest("d", p, "SIM0000", (TAG, p.name, "SIM0000"), dry_run=True))
    assert dry.ok and not dry.job_id
    stats = fleet.stats()
    assert stats["launch_failures"] == 2 and stats["launches"] == 0 and fleet.jobs(0) == []


def test_launch_failure_rate_is_seeded():
    def outcomes(seed: int) -> list[bool]:
        fleet, _ = make(seed=seed, launch_failure_rate=0.5)
        return [launch(fleet, n=i).ok for i in range(40)]

    assert outcomes(3) == outcomes(3)
    assert 5 < sum(outcomes(3)) < 35
    assert outcomes(3) != outcomes(4)


def test_faulty_phone_is_unavailable_and_its_jobs_fail():
    fleet, clock = make(faulty=["SIM0002"], startup_seconds=10)
    assert state(fleet, "SIM0002") == (PhoneState.UNAVAILABLE, "faulty")
    launch(fleet, "SIM0002")
    clock.advance(10)
    assert only_job(fleet).outcome == "failed"
    assert state(fleet, "SIM0002") == (PhoneState.UNAVAILABLE, "faulty")
    stats = fleet.stats()
    assert stats["faulty_launches"] == 1 and stats["failed"] == 1


def test_steady_arrivals_follow_the_rate():
    fleet, clock = make(queues={Q: {"per_hour": 60}})
    clock.advance(10 * 3600)  # one jump of ten hours
    pending = fleet.counts([Q])[Q].pending
    assert 500 < pending < 700
    times = [t[1] for t in fleet.stats()["tasks"]]
    assert times == sorted(times) and START < times[0] and times[-1] <= START + 10 * 3600


def test_same_seed_same_run():
    def run(seed: int) -> tuple:
        fleet, clock = make(seed=seed, phones=10, queues={Q: {"burst": 3, "per_hour": 40}}, launch_failure_rate=0.2)
        a51 = pool("a51", selector=Selector(model="Galaxy A51"))
        results = []
        for step in range(30):
            results.append(launch(fleet, f"SIM{step % 10:04d}", n=step).ok)
            results.append(launch(fleet, "", a51, n=100 + step).job_id)
            clock.advance(97)
        stats = fleet.stats()
        return results, [(j.job_id, j.udid, j.outcome, j.ended_at) for j in fleet.jobs(0)], stats["tasks"]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_jobs_since_and_foreign_jobs():
    fleet, clock = make()
    launch(fleet, "SIM0000", n=1)
    clock.advance(100)
    launch(fleet, "SIM0001", n=2)
    p = pool()
    fleet.launch(LaunchRequest("x", p, "SIM0002", ("someone-else", p.name, "SIM0002")))
    assert [j.udid for j in fleet.jobs(START)] == ["SIM0000", "SIM0001"]
    assert [j.udid for j in fleet.jobs(START + 100)] == ["SIM0001"]
    assert fleet.jobs(START + 101) == []


def test_unknown_queue_has_no_tasks():
    fleet, clock = make(ready=10, idle_timeout_seconds=10)
    launch(fleet, p=pool(queue="nobody/asked"))
    assert fleet.counts(["nobody/asked", "x/y"]) == {"nobody/asked": QueueCounts(0, 0), "x/y": QueueCounts(0, 0)}
    clock.advance(20)
    assert only_job(fleet).outcome == "wasted"


def test_remote_calls_are_counted_by_endpoint():
    fleet, _ = make()
    fleet.counts([Q])
    fleet.counts([Q])
    fleet.phones()
    fleet.jobs(0)
    fleet.workers([Q, "other"])
    launch(fleet)
    assert fleet.stats()["calls"] == {"counts": 2, "phones": 1, "jobs": 1, "workers": 2, "launch": 1}


def test_check_names_unknown_phones_and_empty_selectors():
    fleet, _ = make()
    pools = [
        Pool("ok", Q, "sim", "sim", "sim", udids=("SIM0000",)),
        Pool("bad", Q, "sim", "sim", "sim", udids=("SIM0000", "GONE")),
        pool("none", selector=Selector(model="iPhone")),
    ]
    assert fleet.check(pools) == [
        "pool bad: phone GONE is not in the simulated fleet",
        "pool none: selector iPhone/* matches no phone of the simulated fleet",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"phones": -1}, "phones"),
        ({"seed": 1.5}, "seed"),
        ({"models": []}, "models"),
        ({"models": "Pixel"}, "models"),
        ({"startup_seconds": -3}, "startup_seconds"),
        ({"launch_failure_rate": 2}, "launch_failure_rate"),
        ({"queues": []}, "queues"),
        ({"queues": {"a/b": 3}}, "queues.a/b"),
        ({"queues": {"a/b": {"burst": 1, "rate": 2}}}, "queues.a/b.rate"),
        ({"queues": {"a/b": {"burst": -1}}}, "queues.a/b.burst"),
        ({"queues": {"a/b": {"per_hour": "many"}}}, "queues.a/b.per_hour"),
    ],
)
def test_bad_options_name_the_key(options, message):
    with pytest.raises(ValueError, match=rf"^\[plugins\.sim\] {message}: "):
        FleetConfig.from_options(options)


def test_selector_launch_without_selector_and_on_a_quarantined_phone():
    fleet, _ = make(phones=1, quarantined=["SIM0000"])
    p = Pool("any", Q, "sim", "sim", "sim", targeting="selector")
    launch(fleet, "", p)
    assert only_job(fleet).udid == "SIM0000"
    assert fleet.stats()["quarantined_launches"] == 1


def test_a_task_arriving_after_a_worker_gave_up_waits_for_the_next_worker():
    fleet, clock = make(ready=10, idle_timeout_seconds=20, cleanup_seconds=0)
    launch(fleet, n=1)
    clock.advance(40)  # wasted at 30
    fleet.add_tasks(Q, 1)
    assert fleet.counts([Q])[Q] == QueueCounts(1, 0)
    launch(fleet, n=2)
    clock.advance(10)
    assert fleet.counts([Q])[Q] == QueueCounts(0, 1)


def test_a_blocked_job_taking_the_phone_later_makes_the_list_lag_again():
    fleet, clock = make(ready=100, idle_timeout_seconds=0, cleanup_seconds=5, list_lag_seconds=60)
    launch(fleet, n=1)
    launch(fleet, n=2)  # blocked: waits for the phone
    clock.advance(104)  # the first job was wasted at 100; the phone cleans up until 105
    assert state(fleet, "SIM0000") == (PhoneState.BUSY, "cleanup")
    clock.advance(2)  # the second job took the phone at 105: listed idle until 165
    assert state(fleet, "SIM0000") == (PhoneState.IDLE, "active")
    clock.advance(59)
    assert state(fleet, "SIM0000") == (PhoneState.BUSY, "initiated")


def test_launches_from_many_threads():
    import threading

    fleet, clock = make(phones=200)
    p = pool()

    def worker(start: int) -> None:
        for i in range(start, 200, 8):
            udid = f"SIM{i:04d}"
            assert fleet.launch(LaunchRequest(f"l{i}", p, udid, (TAG, p.name, udid))).ok
            fleet.phones()
            fleet.counts([Q])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = fleet.jobs(0)
    assert len(jobs) == 200 and len({j.job_id for j in jobs}) == 200 and len({j.udid for j in jobs}) == 200
    assert fleet.stats()["double_bookings"] == 0


def test_one_long_jump_over_a_large_fleet_keeps_the_books_straight():
    queues = {f"proj/q{i}": {"burst": 10, "per_hour": 30} for i in range(200)}
    fleet, clock = make(phones=5000, queues=queues, seed=5)
    for i in range(5000):
        udid = f"SIM{i:04d}"
        launch(fleet, udid, pool(f"p{i % 200}", f"proj/q{i % 200}"), n=i)
    clock.advance(8 * 3600)
    stats = fleet.stats()
    assert stats["launches"] == 5000 and stats["completed"] + stats["wasted"] == 5000
    assert stats["completed"] == stats["tasks_claimed"] >= 2000  # the bursts, and tasks arriving while workers wait
    assert stats["jobs_starting"] == stats["jobs_running"] == 0
    counts = fleet.counts(list(queues))
    assert sum(c.claimed for c in counts.values()) == 0
    assert sum(c.pending for c in counts.values()) == stats["tasks_created"] - stats["tasks_claimed"]
    assert all(p.state is PhoneState.IDLE for p in fleet.phones())


def test_workers_name_the_latest_task_and_keep_the_first_claim():
    fleet, clock = make(queues={Q: {"burst": 3}}, ready=10, task_seconds=100, cleanup_seconds=0)
    launch(fleet, "SIM0000", n=1)
    clock.advance(10)
    (first,) = fleet.workers([Q])[Q]
    assert first.first_claim == START + 10 and first.quarantined_until is None
    task_id, run_id = first.latest_task.split("/")
    assert len(task_id) == 22 and run_id == "0"
    clock.advance(100)  # the job ended, the phone is idle again
    launch(fleet, "SIM0000", n=2)
    launch(fleet, "SIM0001", n=3)
    clock.advance(10)
    again, other = fleet.workers([Q])[Q]
    assert again.worker_id == "SIM0000" and again.first_claim == START + 10
    assert again.latest_task not in ("", first.latest_task)
    assert other.worker_id == "SIM0001" and other.first_claim == START + 120
    assert len({first.latest_task, again.latest_task, other.latest_task}) == 3
    assert fleet.workers(["other/queue"]) == {"other/queue": []}  # a worker is listed in the queue it claimed from


def test_workers_are_read_in_pages_of_a_thousand_per_queue():
    fleet, clock = make(phones=2500, queues={Q: {"burst": 2500}}, ready=10)
    for i in range(2500):
        launch(fleet, f"SIM{i:04d}", n=i)
    clock.advance(10)
    assert len(fleet.workers([Q, "empty/queue"])[Q]) == 2500
    assert fleet.stats()["calls"]["workers"] == 3 + 1


@pytest.mark.parametrize("lag", [0, 12, 45])  # none, ending during the setup, outlasting it
def test_the_device_list_kept_between_calls_says_what_each_phone_says_at_every_second(lag):
    """``phones`` returns a device list the fleet updates on each change rather than asking every phone: second by
    second, through pinned, blocked, selector and group launches, idle-outs, cleanups and a faulty phone, it must match
    what each phone shows at that time."""
    fleet, clock = make(
        phones=6, queues={Q: {"burst": 3, "per_hour": 60}}, faulty=["SIM0005"], seed=3, startup_seconds=20,
        pre_seconds=10, task_seconds=30, post_seconds=5, idle_timeout_seconds=15, cleanup_seconds=7,
        list_lag_seconds=lag, upload_seconds=0.5,
    )
    a51 = pool("a51", selector=Selector(model="Galaxy A51"))
    for second in range(900):
        if second % 25 == 0:
            launch(fleet, f"SIM{second // 25 % 6:04d}", n=second)
        if second % 35 == 0:
            launch(fleet, "", a51, n=-second)
        if second % 45 == 0:
            launch(fleet, "", group(("SIM0002", "SIM0004")), n=10_000 + second)
        now = clock.now()
        assert fleet.phones() == [phone.view(now) for phone in fleet._phones.values()], second
        clock.advance(1)
    stats = fleet.stats()
    assert stats["completed"] and stats["wasted"] and stats["double_bookings"] and stats["faulty_launches"]


def group(members: tuple[str, ...], name: str = "grp") -> Pool:
    return Pool(name, Q, "sim", "sim", "sim", udids=members, targeting="group")


def test_a_group_launch_gets_a_free_member_named_once_it_runs():
    fleet, clock = make(phones=6, queues={Q: {"burst": 3}}, startup_seconds=10, pre_seconds=5, list_lag_seconds=5)
    members = ("SIM0002", "SIM0004", "SIM0005")
    launch(fleet, "SIM0004", n=1)  # a pinned job takes one member first
    launch(fleet, "", group(members), n=2)
    pinned, picked = fleet.jobs(0)
    assert picked.udid == "" and picked.state is JobState.STARTING  # placed, but a waiting run names no device
    clock.advance(10)
    picked = fleet.jobs(0)[1]
    assert picked.state is JobState.RUNNING and picked.udid in {"SIM0002", "SIM0005"}  # a free member, not SIM0004
    assert state(fleet, picked.udid)[0] is PhoneState.BUSY
    assert fleet.stats()["no_free_phone"] == 0 and fleet.stats()["double_bookings"] == 0


def test_a_group_launch_with_no_free_member_waits_and_is_counted():
    fleet, clock = make(phones=4, ready=10, idle_timeout_seconds=20, cleanup_seconds=5)
    g = group(("SIM0001",))
    launch(fleet, "", g, n=1)
    launch(fleet, "", g, n=2)  # the group's one member is taken: this one waits for it
    launch(fleet, "", g, n=3)
    assert fleet.stats()["no_free_phone"] == 2
    clock.advance(35)  # the first was wasted at 30 and its phone cleaned up at 35: the next waiting job takes it
    udids = [j.udid for j in fleet.jobs(0)]
    assert udids == ["SIM0001", "", ""] and fleet.jobs(0)[1].state is JobState.STARTING
    clock.advance(10)
    assert [j.udid for j in fleet.jobs(0)] == ["SIM0001", "SIM0001", ""]


def test_a_group_launch_may_get_a_quarantined_member_whose_worker_idles_out():
    """The cloud picks among the group's free members, including one the host would avoid: quarantined, its
    worker claims nothing and the job idles out (wasted), while the task waits."""
    fleet, clock = make(phones=2, queues={Q: {"burst": 1}}, ready=10, idle_timeout_seconds=50,
                        quarantined=["SIM0001"])
    launch(fleet, "", group(("SIM0001",)))
    clock.advance(10)
    assert only_job(fleet).udid == "SIM0001"
    clock.advance(50)
    assert only_job(fleet).outcome == "wasted" and fleet.counts([Q])[Q] == QueueCounts(1, 0)
    assert fleet.stats()["quarantined_launches"] == 1
