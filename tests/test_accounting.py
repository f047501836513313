"""cycle/accounting.py, exact accounting: a launch covers a pending task until its worker claims one; adoption
after a crash; the ledger never loses a job, and two launches never share one."""

from __future__ import annotations

import sqlite3

import pytest

from provisioner.ledger import Ledger
from provisioner.model import JobState, LaunchState, Phone, PhoneState, RemoteJob, Worker
from provisioner.types import RemoteError

from worlds import fake_loop, launches, sim_loop


def test_a_running_job_covers_its_task_until_its_worker_claims(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    fake.pending["proj/p"] = 1
    fake.workers_of["proj/p"] = [Worker("A", latest_task="old/0"), Worker("B", latest_task="older/0")]
    first = launches(p.cycle())
    assert len(first) == 1
    udid = first[0][1]
    assert p.ledger.in_flight()[0].claim_baseline == {"A": "old/0", "B": "older/0", "C": ""}[udid]
    fake.job("job-0", JobState.RUNNING)  # running: its pre step installs the worker, no claim yet
    for _ in range(5):  # minutes of running without a claim: the one pending task stays covered
        clock.advance(30)
        report = p.cycle()
        assert launches(report) == []
        assert report.plan.decisions[0].starting == 1
    # The worker claims: the pending count the queue shows now is a new task, and gets a launch.
    others = [w for w in fake.workers_of["proj/p"] if w.worker_id != udid]
    fake.workers_of["proj/p"] = [*others, Worker(udid, latest_task="new/0")]
    clock.advance(30)
    assert len(launches(p.cycle())) == 1
    claimed = [la for la in p.ledger.in_flight() if la.job_id == "job-0"][0]
    assert claimed.claimed_at == clock.now()


def test_a_new_workers_first_claim_is_a_claim(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    fake.pending["proj/p"] = 1
    p.cycle()
    fake.job("job-0")
    udid = fake.launched[0][1]
    clock.advance(30)
    assert launches(p.cycle()) == []
    fake.workers_of["proj/p"] = [Worker(udid, latest_task="t/0", first_claim=clock.now() - 5)]
    clock.advance(30)
    assert len(launches(p.cycle())) == 1


def test_an_old_workers_first_claim_is_not_a_claim(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    fake.pending["proj/p"] = 1
    fake.workers_of["proj/p"] = [Worker(u, latest_task="t/0", first_claim=1.0) for u in "ABC"]
    p.cycle()
    fake.job("job-0")
    for _ in range(3):
        clock.advance(30)
        assert launches(p.cycle()) == []


def test_a_launch_stops_covering_when_its_job_ends_or_after_max_startup(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    fake.pending["proj/p"] = 1
    p.cycle()
    fake.job("job-0", JobState.ENDED)  # found no task, or failed: it covers nothing any more
    clock.advance(30)
    assert len(launches(p.cycle())) == 1
    fake.job("job-1")
    clock.advance(901)  # never claimed within max_startup_seconds
    assert len(launches(p.cycle())) == 1


def test_without_a_phone_or_a_claim_read_the_learned_time_stands_in(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    fake.pending["proj/s"] = 1
    assert launches(p.cycle()) == [("s", "")]
    fake.job("job-0", JobState.RUNNING, udid="")  # the cloud has not said which phone
    clock.advance(150)
    assert launches(p.cycle()) == []  # within claim_seconds (200): still covering
    clock.advance(60)
    assert launches(p.cycle()) == [("s", "")]  # past it: taken as claimed


def test_a_selector_launch_takes_its_baseline_when_its_phone_becomes_known(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    fake.pending["proj/s"] = 1
    fake.workers_of["proj/s"] = [Worker("S1", latest_task="before/0")]
    p.cycle()
    fake.job("job-0", JobState.RUNNING, udid="S1")
    clock.advance(30)
    assert launches(p.cycle()) == []
    launch = p.ledger.in_flight()[0]
    assert (launch.udid, launch.claim_baseline, launch.claimed_at) == ("S1", "before/0", None)
    for _ in range(10):  # far past claim_seconds: the phone is known, so only a claim ends the cover
        clock.advance(30)
        assert launches(p.cycle()) == []
    fake.workers_of["proj/s"] = [Worker("S1", latest_task="after/0")]
    clock.advance(30)
    assert len(launches(p.cycle())) == 1


def test_the_launch_to_claim_time_is_learned_per_pool(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    ledger = p.ledger
    for i, seconds in enumerate((100, 120, 500)):
        launch = ledger.add("s", f"S{i}", clock.now() - 1000)
        ledger.mark(launch.id, claimed_at=launch.submitted_at + seconds)
    assert p.claim_estimate("s", clock.now()) == 120
    assert p.claim_estimate("p", clock.now()) == 200  # nothing learned: the configured default


def test_adoption_takes_the_newest_unrecorded_job_created_after_the_launch(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    now = clock.now()
    ledger = p.ledger
    older = ledger.add("p", "A", now - 600)
    ledger.update(older.id, LaunchState.ENDED, now - 300, job_id="old-job", outcome="completed")
    other = ledger.add("p", "A", now - 100)
    ledger.update(other.id, LaunchState.STARTING, now - 99, job_id="other-job")
    crashed = ledger.add("p", "A", now - 20)  # a process died while submitting it
    ledger.update(crashed.id, LaunchState.SUBMITTING, now - 20)
    fake.job_list = [
        RemoteJob("old-job", "p", "A", JobState.ENDED, now - 590, now - 300),  # an older, finished job
        RemoteJob("other-job", "p", "A", JobState.RUNNING, now - 95),  # another launch's
        RemoteJob("ended-new", "p", "A", JobState.ENDED, now - 18, now - 5),  # a candidate, but not the newest
        RemoteJob("too-old", "p", "A", JobState.RUNNING, now - 40),  # created before the launch
        RemoteJob("wrong-phone", "p", "B", JobState.RUNNING, now - 15),
        RemoteJob("early", "p", "A", JobState.RUNNING, now - 19),
        RemoteJob("real", "p", "A", JobState.RUNNING, now - 10),  # the newest candidate
    ]
    p.cycle()
    assert ledger.get(crashed.id).job_id == "real"
    assert ledger.get(older.id).job_id == "old-job" and ledger.get(other.id).job_id == "other-job"


def test_a_job_that_ended_before_anyone_looked_is_adopted_and_its_launch_ended_with_it(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    now = clock.now()
    cut_off = p.ledger.add("p", "A", now - 20)  # its daemon was cut off before it could record the job
    p.ledger.update(cut_off.id, LaunchState.SUBMITTING, now - 20)
    fake.job_list = [RemoteJob("quick", "p", "A", JobState.ENDED, now - 19, now - 18, "failed")]
    report = p.cycle()
    launch = p.ledger.get(cut_off.id)
    assert launch.job_id == "quick" and launch.state is LaunchState.ENDED and launch.outcome == "failed"
    assert report.strangers == 0


def test_adoption_never_takes_a_job_the_ledger_holds(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    now = clock.now()
    ledger = p.ledger
    done = ledger.add("p", "A", now - 30)
    ledger.update(done.id, LaunchState.CANCELLED, now - 29, job_id="held")  # not in flight, but its job is recorded
    crashed = ledger.add("p", "A", now - 20)
    ledger.update(crashed.id, LaunchState.SUBMITTING, now - 20)
    fake.job_list = [RemoteJob("held", "p", "A", JobState.RUNNING, now - 10)]
    p.cycle()
    assert ledger.get(crashed.id).job_id == ""


def test_two_launches_never_share_a_job_id(backend):
    ledger = backend.open()
    a, b = ledger.add("p", "A", 1.0), ledger.add("p", "B", 2.0)
    ledger.update(a.id, LaunchState.STARTING, 3.0, job_id="j")
    with pytest.raises(ledger.IntegrityError):
        ledger.update(b.id, LaunchState.STARTING, 4.0, job_id="j")


def test_a_ledger_whose_launches_share_a_job_is_repaired_in_place(tmp_path):
    path = tmp_path / "l.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE launches (id TEXT PRIMARY KEY, pool TEXT NOT NULL, udid TEXT NOT NULL,
        state TEXT NOT NULL, submitted_at REAL NOT NULL, updated_at REAL NOT NULL, job_id TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '');
        INSERT INTO launches VALUES ('a','p','A','ended',1,2,'j','completed','');
        INSERT INTO launches VALUES ('b','p','A','ended',3,4,'j','completed','');""")
    db.commit()
    db.close()
    ledger = Ledger(path)
    assert (ledger.get("a").job_id, ledger.get("b").job_id) == ("j", "")
    assert ledger.get("b").claimed_at is None  # the new columns are there


def test_a_job_whose_launch_is_still_being_submitted_counts_once(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    fake.pending["proj/p"] = 1
    launch = p.ledger.add("p", "A", clock.now())
    p.ledger.update(launch.id, LaunchState.SUBMITTING, clock.now())
    p._active.add(launch.id)  # this process is submitting it; the CLI has created the job already
    fake.job_list = [RemoteJob("j", "p", "A", JobState.STARTING, clock.now())]
    flying = p.reconcile({"fake": fake.job_list}, {"proj/p": []}, clock.now())
    assert [(f.pool, f.udid, f.starting) for f in flying] == [("p", "A", True)]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

STATES = ["queued", "submitting-here", "submitting-dead", "starting", "running"]


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(STATES), st.booleans(), st.booleans(), st.booleans()), max_size=6))
def test_starting_never_exceeds_the_launches_and_jobs_it_stands_for(tmp_path_factory, cases):
    """Every launch in flight whose job the provider lists, id recorded or not, counts exactly once."""
    p, fake, clock = fake_loop(tmp_path_factory.mktemp("prop"))
    now = clock.now()
    phones = iter("ABC")
    jobs = []
    for i, (state, listed, selector, job_running) in enumerate(cases):
        pool = "s" if selector else "p"
        udid = "" if selector else next(phones, "")
        if not udid:
            pool = "s"
        launch = p.ledger.add(pool, udid, now - 30 + i)
        job_id = f"j{i}"
        recorded = state in ("starting", "running")
        if state != "queued":
            p.ledger.update(launch.id, LaunchState(state.split("-")[0]), now - 29 + i,
                            **({"job_id": job_id} if recorded else {}))
        if state == "submitting-here":
            p._active.add(launch.id)
        if listed and state != "queued":
            jobs.append(RemoteJob(job_id, pool, udid or f"S{i % 3}", JobState.RUNNING if job_running else JobState.STARTING,
                                  now - 28 + i))
    flying = p.reconcile({"fake": jobs}, {"proj/p": [], "proj/s": []}, now)
    placed = [j for j in jobs if j.pool == "s"]  # a placed selector job books its phone, covering nothing more
    assert sum(f.starting for f in flying) <= len(cases) <= len(flying) <= len(cases) + len(placed)
    pinned = [f.udid for f in flying if f.pool == "p"]
    assert len(pinned) == len(set(pinned))


def test_a_job_with_our_tag_that_no_launch_knows_is_reported_loudly(tmp_path, backend, log_lines):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    fake.job_list = [RemoteJob("theirs", "p", "B", JobState.RUNNING, clock.now() - 5)]
    first = p.cycle()
    second = p.cycle()
    lines = log_lines.messages("WARNING")
    assert first.strangers == second.strangers == 1
    assert len([line for line in lines if "no launch of ours knows it" in line]) == 1  # once per job
    assert ("p", "B") not in launches(first)  # its phone is respected


def test_the_first_cycle_hold_for_strangers_is_spent_only_by_a_cycle_that_would_launch(tmp_path, log_lines):
    """Another daemon's job with our tag: the hold falls on the first cycle that would really launch, not on one
    with nothing pending, nor on one whose job list could not be read (it launches nothing anyway)."""
    p, fake, clock = fake_loop(tmp_path)
    fake.job_list = [RemoteJob("theirs", "p", "B", JobState.RUNNING, clock.now() - 1000)]  # covers no task
    assert launches(p.cycle()) == []  # nothing pending
    fake.pending["proj/p"] = 1
    listed = fake.jobs
    fake.jobs = lambda since: (_ for _ in ()).throw(RemoteError("GET jobs: read timed out"))
    clock.advance(30)
    assert launches(p.cycle()) == []  # which phones jobs hold is unknown: nothing can launch
    fake.jobs = listed
    clock.advance(30)
    held = p.cycle()
    assert launches(held) == [] and held.strangers == 1  # the first cycle that would launch: held
    assert any("first cycle: launching nothing" in line for line in log_lines.messages("WARNING"))
    clock.advance(30)
    assert len(launches(p.cycle())) == 1  # then it launches, leaving their phone alone
    assert ("p", "B") not in [(pool, udid) for pool, udid, _ in fake.launched]


def test_a_launch_sent_late_in_its_batch_covers_from_when_it_was_sent(tmp_path):
    """A selector launch whose submission waited behind others covers its task for the learned launch-to-claim
    time from when the cloud got it, not from when it was planned."""
    p, fake, clock = fake_loop(tmp_path)
    fake.pending["proj/s"] = 1
    real = fake.launch

    def slow(request):  # this submission waits 300 s behind others (the clock moves while it does)
        clock.advance(300)
        return real(request)

    fake.launch = slow
    assert launches(p.cycle()) == [("s", "")]
    (launch,) = p.ledger.in_flight()
    assert launch.sent_at == launch.submitted_at + 300
    fake.job("job-0", JobState.RUNNING, udid="")
    clock.advance(30)  # 330 s after planning, 30 s after sending: well within claim_seconds (200)
    assert launches(p.cycle()) == []


def test_a_selector_launch_whose_phone_is_named_after_its_claim_still_sees_the_claim(tmp_path):
    """The worker claims between two cycles, before the job list names the phone: the baseline is what the worker
    had while its phone was idle, so the claim is seen."""
    p, fake, clock = fake_loop(tmp_path)
    fake.pending["proj/s"] = 1
    fake.workers_of["proj/s"] = [Worker("S1", latest_task="before/0")]
    p.cycle()  # S1 is idle: its latest task is noted
    fake.job("job-0", JobState.RUNNING, udid="")
    fake.phone_list = [Phone("S0", model="S"), Phone("S1", model="S", state=PhoneState.BUSY), Phone("S2", model="S")]
    fake.workers_of["proj/s"] = [Worker("S1", latest_task="ours/0")]  # claimed before the phone is named
    fake.job("job-0", JobState.RUNNING, udid="S1")
    clock.advance(30)
    assert len(launches(p.cycle())) == 1  # the claimed task is covered no more: the one pending now gets a launch
    launch = next(la for la in p.ledger.in_flight() if la.job_id == "job-0")
    assert (launch.claim_baseline, launch.claimed_at) == ("before/0", clock.now())


def test_a_launch_never_seen_stops_counting_after_max_startup(tmp_path):
    def lose_jobs(runtime):
        runtime.objects["device_provider"]["sim"].jobs = lambda since: []

    p, rec, clock, _ = sim_loop(tmp_path, phones=2, burst=1, tweak=lose_jobs)
    p.cycle()
    assert len(p.ledger.in_flight()) == 2
    clock.advance(601)
    p.cycle()
    outcomes = {e[3] for e in rec.events if e[0] == "ended"}
    assert outcomes == {"never seen"}


def test_a_launch_of_a_pool_removed_from_the_config_is_closed(tmp_path):
    p, rec, clock, _ = sim_loop(tmp_path, phones=4, burst=1)
    p.cycle()
    assert {launch.pool for launch in p.ledger.in_flight()} == {"perf", "unit"}
    del p.pools["unit"]  # as after an edit of the config and a restart
    p.cycle()
    assert {launch.pool for launch in p.ledger.in_flight()} == {"perf"}
    assert ("ended", "unit", "SIM0001", "pool removed") in rec.events or ("ended", "unit", "SIM0003", "pool removed") in rec.events


def test_a_phone_stays_booked_while_its_job_is_listed_starting_past_the_startup_limit(tmp_path):
    """The device list says idle and the job is still `initiated` after max_startup_seconds: no second launch."""
    p, _, clock, fleet = sim_loop(tmp_path, phones=2, burst=3)
    p.settings = type(p.settings)(**{**p.settings.__dict__, "max_startup_seconds": 60})
    first = p.cycle().plan.launches
    assert [launch.pool for launch in first] == ["perf", "unit"]  # the one A55 phone, the one unit phone
    clock.advance(80)  # past max_startup_seconds, the job still starting (210 s), the list lagging (90 s)
    assert p.cycle().plan.launches == ()
    assert fleet.stats()["double_bookings"] == 0
