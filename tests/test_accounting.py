"""Exact accounting: a launch covers a pending task until its worker claims one; the ledger never loses a job.

The roles here are hand-driven fakes (no simulated fleet), so that each test states exactly what the queue,
the phones and the jobs say at each cycle.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from provisioner.clock import VirtualClock
from provisioner.config import load
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner, Submitter
from provisioner.model import (
    JobState, Launch, LaunchResult, LaunchState, Phone, PhoneState, QueueCounts, RemoteJob, Worker,
)
from provisioner.plugins import Runtime

CONFIG = """
[provisioner]
interval = 30
launch_interval = 0
seed = 1
claim_seconds = 200
max_startup_seconds = 900
[defaults]
queue_source = "fake"
device_provider = "fake"
launcher = "fake"
[pools.p]
queue = "proj/p"
udids = ["A", "B", "C"]
[pools.s]
queue = "proj/s"
selector = { model = "S" }
targeting = "selector"
"""


class Fake:
    """Queue source, device provider and launcher in one; the test sets what each read answers."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.pending = {"proj/p": 0, "proj/s": 0}
        self.workers_of: dict[str, list[Worker] | None] = {"proj/p": [], "proj/s": []}
        self.phone_list = [Phone(u) for u in "ABC"] + [Phone(f"S{i}", model="S") for i in range(3)]
        self.job_list: list[RemoteJob] = []
        self.launched: list = []
        self.fail_with: Exception | None = None

    def counts(self, queues):
        return {q: QueueCounts(self.pending[q], 0) for q in queues}

    def workers(self, queues):
        return {q: self.workers_of[q] for q in queues}

    def phones(self):
        return self.phone_list

    def jobs(self, since):
        return self.job_list

    def launch(self, request):
        if self.fail_with is not None:
            raise self.fail_with
        job_id = f"job-{len(self.launched)}"
        self.launched.append((request.pool.name, request.udid, job_id))
        return LaunchResult(True, job_id=job_id)

    def job(self, job_id: str, state: JobState = JobState.RUNNING, udid: str | None = None) -> None:
        """Let the provider list a launched job (its pool and phone from the launch)."""
        pool, pinned, _ = next(x for x in self.launched if x[2] == job_id)
        self.job_list = [j for j in self.job_list if j.job_id != job_id]
        self.job_list.append(RemoteJob(job_id, pool, pinned if udid is None else udid, state, self.clock.now() - 1,
                                       self.clock.now() if state is JobState.ENDED else None))


def fake_world(tmp_path: Path, text: str):
    """The config ``text`` loaded, and one ``Fake`` in every role: (config, fake, clock, runtime)."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    config, problems = load(path)
    assert not problems
    clock = VirtualClock()
    fake = Fake(clock)
    runtime = Runtime(config.pools, {role: {"fake": fake} for role in ("queue_source", "device_provider", "launcher")})
    return config, fake, clock, runtime


def make(tmp_path: Path, extra: str = "", backend=None):
    config, fake, clock, runtime = fake_world(tmp_path, CONFIG + extra)
    ledger = backend.open() if backend is not None else Ledger(tmp_path / "ledger.sqlite3")
    return Provisioner(config, runtime, ledger, clock, inline=True), fake, clock


def launches(report) -> list[tuple[str, str]]:
    return [(x.pool, x.udid) for x in report.plan.launches]


def test_a_running_job_covers_its_task_until_its_worker_claims(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
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
    p, fake, clock = make(tmp_path, backend=backend)
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
    p, fake, clock = make(tmp_path, backend=backend)
    fake.pending["proj/p"] = 1
    fake.workers_of["proj/p"] = [Worker(u, latest_task="t/0", first_claim=1.0) for u in "ABC"]
    p.cycle()
    fake.job("job-0")
    for _ in range(3):
        clock.advance(30)
        assert launches(p.cycle()) == []


def test_a_launch_stops_covering_when_its_job_ends_or_after_max_startup(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
    fake.pending["proj/p"] = 1
    p.cycle()
    fake.job("job-0", JobState.ENDED)  # found no task, or failed: it covers nothing any more
    clock.advance(30)
    assert len(launches(p.cycle())) == 1
    fake.job("job-1")
    clock.advance(901)  # never claimed within max_startup_seconds
    assert len(launches(p.cycle())) == 1


def test_without_a_phone_or_a_claim_read_the_learned_time_stands_in(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
    fake.pending["proj/s"] = 1
    assert launches(p.cycle()) == [("s", "")]
    fake.job("job-0", JobState.RUNNING, udid="")  # the cloud has not said which phone
    clock.advance(150)
    assert launches(p.cycle()) == []  # within claim_seconds (200): still covering
    clock.advance(60)
    assert launches(p.cycle()) == [("s", "")]  # past it: taken as claimed


def test_a_selector_launch_takes_its_baseline_when_its_phone_becomes_known(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
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
    p, fake, clock = make(tmp_path, backend=backend)
    ledger = p.ledger
    for i, seconds in enumerate((100, 120, 500)):
        launch = ledger.add("s", f"S{i}", clock.now() - 1000)
        ledger.mark(launch.id, claimed_at=launch.submitted_at + seconds)
    assert p.claim_estimate("s", clock.now()) == 120
    assert p.claim_estimate("p", clock.now()) == 200  # nothing learned: the configured default


def test_adoption_takes_the_newest_unrecorded_job_created_after_the_launch(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
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
    p, fake, clock = make(tmp_path, backend=backend)
    now = clock.now()
    cut_off = p.ledger.add("p", "A", now - 20)  # its daemon was cut off before it could record the job
    p.ledger.update(cut_off.id, LaunchState.SUBMITTING, now - 20)
    fake.job_list = [RemoteJob("quick", "p", "A", JobState.ENDED, now - 19, now - 18, "failed")]
    report = p.cycle()
    launch = p.ledger.get(cut_off.id)
    assert launch.job_id == "quick" and launch.state is LaunchState.ENDED and launch.outcome == "failed"
    assert report.strangers == 0


def test_adoption_never_takes_a_job_the_ledger_holds(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
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


def test_a_launcher_returning_a_recorded_job_id_fails_that_launch(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
    fake.pending["proj/p"] = 2
    fake.launch = lambda request: LaunchResult(True, job_id="same")
    p.cycle()
    states = sorted(la.state.value for la in p.ledger.since(0))
    assert states == ["failed", "starting"]
    assert "already recorded" in [la for la in p.ledger.since(0) if la.state is LaunchState.FAILED][0].detail


def test_an_exception_in_a_submission_fails_the_launch_and_frees_the_phone(tmp_path, backend, monkeypatch):
    p, fake, clock = make(tmp_path, backend=backend)
    fake.pending["proj/p"] = 1
    real_update = p.ledger.update

    def broken_update(launch_id, state, now, **kw):
        if state is LaunchState.STARTING:
            raise OSError("disk full")
        return real_update(launch_id, state, now, **kw)

    monkeypatch.setattr(p.ledger, "update", broken_update)
    p.cycle()
    (launch,) = p.ledger.since(0)
    assert launch.state is LaunchState.FAILED and "OSError: disk full" in launch.detail
    assert p.ledger_error is None and not p._active
    monkeypatch.setattr(p.ledger, "update", real_update)
    clock.advance(120)  # past the retry backoff of its phone
    assert len(launches(p.cycle())) == 1  # the task is not covered by the failed launch


def test_a_ledger_that_cannot_be_written_stops_the_watchdog(tmp_path, monkeypatch):
    from provisioner import notify

    p, fake, clock = make(tmp_path)
    fake.pending["proj/p"] = 1
    fed, said = [], []
    monkeypatch.setattr(notify, "watchdog", lambda status="": fed.append(status))
    monkeypatch.setattr(notify, "notify", lambda message: said.append(message))

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(p.ledger, "update", locked)
    p.run(threading.Event(), max_cycles=1)
    assert p.ledger_error == "OperationalError: database is locked"
    assert fed == [] and said == ["STATUS=ledger cannot be written: OperationalError: database is locked"]


def test_a_phone_listed_twice_takes_its_busiest_state(tmp_path):
    p, fake, clock = make(tmp_path)
    fake.pending["proj/p"] = 3
    fake.phone_list = [Phone("A", state=PhoneState.BUSY), Phone("A"), Phone("B"), Phone("B")]
    assert sorted(launches(p.cycle())) == [("p", "B")]


def test_a_job_whose_launch_is_still_being_submitted_counts_once(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
    fake.pending["proj/p"] = 1
    launch = p.ledger.add("p", "A", clock.now())
    p.ledger.update(launch.id, LaunchState.SUBMITTING, clock.now())
    p._active.add(launch.id)  # this process is submitting it; the CLI has created the job already
    fake.job_list = [RemoteJob("j", "p", "A", JobState.STARTING, clock.now())]
    flying = p.reconcile({"fake": fake.job_list}, {"proj/p": []}, clock.now())
    assert [(f.pool, f.udid, f.starting) for f in flying] == [("p", "A", True)]


def test_dry_run_never_calls_launch_and_shows_the_render(tmp_path, capfd):
    p, fake, clock = make(tmp_path)
    p.dry_run = True
    fake.pending["proj/p"] = 2
    fake.render = lambda request: f"would run for {request.udid} (dry_run={request.dry_run})"
    lines = []
    from loguru import logger

    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        report = p.cycle()
        again = p.cycle()
    finally:
        logger.remove(sink)
    assert fake.launched == [] and len(report.plan.launches) == 2 and len(again.plan.launches) == 2
    would = [line for line in lines if line.startswith("dry run: would launch")]
    assert len(would) == 4 and sum("dry_run=True" in line for line in would) == 1  # rendered once per pool
    assert p.ledger.since(0) == []


class Slots(threading.Semaphore):
    """The submitter's slots, telling when the dispatcher waits for one."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.waiting = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if blocking:
            self.waiting.set()
        return super().acquire(blocking, timeout)


def test_pacing_holds_between_any_two_submission_starts():
    clock = VirtualClock(0.0)
    release = {i: threading.Event() for i in range(4)}
    started = {i: threading.Event() for i in range(4)}

    def work(launch):
        i = int(launch.id)
        started[i].set()
        release[i].wait(10)

    sub = Submitter(work, lambda launch: None, clock, interval=2.0, concurrency=2)
    sub._slots = slots = Slots(2)
    starts: list[float] = []
    submit = sub._pool.submit
    sub._pool.submit = lambda fn, launch: (starts.append(clock.now()), submit(fn, launch))[1]
    for i in range(4):
        sub.put(Launch(str(i), "p", "A", LaunchState.QUEUED, 0.0))
    assert started[0].wait(10) and started[1].wait(10) and slots.waiting.wait(10)
    clock.advance(10)  # both submissions take long; 2 and 3 wait for a slot, and both slots free at once
    release[0].set()
    release[1].set()
    assert started[2].wait(10) and started[3].wait(10)
    release[2].set()
    release[3].set()
    sub.close(cancel=False)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(starts) == 4 and min(gaps) >= 2.0, starts
    assert sub.capped >= 1


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

STATES = ["queued", "submitting-here", "submitting-dead", "starting", "running"]


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(STATES), st.booleans(), st.booleans(), st.booleans()), max_size=6))
def test_starting_never_exceeds_the_launches_and_jobs_it_stands_for(tmp_path_factory, cases):
    """Every launch in flight whose job the provider lists, id recorded or not, counts exactly once."""
    p, fake, clock = make(tmp_path_factory.mktemp("prop"))
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


def test_a_job_with_our_tag_that_no_launch_knows_is_reported_loudly(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
    fake.job_list = [RemoteJob("theirs", "p", "B", JobState.RUNNING, clock.now() - 5)]
    lines = []
    from loguru import logger

    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    try:
        first = p.cycle()
        second = p.cycle()
    finally:
        logger.remove(sink)
    assert first.strangers == second.strangers == 1
    assert len([line for line in lines if "no launch of ours knows it" in line]) == 1  # once per job
    assert ("p", "B") not in launches(first)  # its phone is respected


def test_a_pools_line_is_logged_when_it_changes_or_launches_and_one_summary_each_cycle(tmp_path):
    p, fake, clock = make(tmp_path)
    lines = []
    from loguru import logger

    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        for _ in range(3):
            p.cycle()
        fake.pending["proj/p"] = 1
        p.cycle()
    finally:
        logger.remove(sink)
    assert [line.split(":")[0] for line in lines if line.startswith("pool ")] == ["pool p", "pool s", "pool p"]
    assert [line.split(":")[0] for line in lines if line.startswith("cycle ")] == [f"cycle {i}" for i in range(1, 5)]


def test_names_from_the_provider_that_cannot_be_labels_are_skipped_and_warned_once(tmp_path):
    p, fake, clock = make(tmp_path, extra='[pools.q]\nqueue = "proj/q"\nselector = { model = "X" }\n')
    fake.pending["proj/q"] = 5
    fake.workers_of["proj/q"] = []
    bad = ["R5\nINFO forged line", "${{ .secrets.TOKEN }}", " ", "a,b", "", None]
    fake.phone_list = [Phone(u, model="X") for u in bad] + [Phone("GOOD", model="X")]
    fake.job_list = [RemoteJob("j1", "q", "x\ny", JobState.RUNNING, clock.now())]
    lines = []
    from loguru import logger

    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    try:
        first, second = p.cycle(), p.cycle()
    finally:
        logger.remove(sink)
    assert [x.udid for x in first.plan.launches if x.pool == "q"] == ["GOOD"]
    skipped = [line for line in lines if "skipped" in line]
    assert len(skipped) == 7 and all("\n" not in line for line in skipped)
    assert second.strangers == 0


def test_check_warns_when_concurrency_not_pacing_caps_the_launch_rate(tmp_path):
    from provisioner.cli.check import pacing_warning
    from provisioner.config import Settings

    settings = Settings(state_dir=tmp_path, launch_interval=2.0, launch_concurrency=4)
    assert pacing_warning(settings, 10_000.0) == ""  # no ledger yet
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    for i, took in enumerate((10.0, 12.0, 20.0)):
        ledger.mark(ledger.add("p", f"U{i}", 9_000.0 + i).id, submit_seconds=took)
    ledger.close()
    warning = pacing_warning(settings, 10_000.0)
    assert warning.startswith("launch_interval 2 s is below the median submission time 12.0 s / launch_concurrency 4")
    assert pacing_warning(Settings(state_dir=tmp_path, launch_interval=3.0, launch_concurrency=4), 10_000.0) == ""


def test_a_launch_sent_late_in_its_batch_covers_from_when_it_was_sent(tmp_path):
    """A selector launch whose submission waited behind others covers its task for the learned launch-to-claim
    time from when the cloud got it, not from when it was planned."""
    p, fake, clock = make(tmp_path)
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
    p, fake, clock = make(tmp_path)
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
