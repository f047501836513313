"""cycle/act.py: the plan's launches written and submitted, paced; what a submission records; a dry run's
rendering; a submission that fails."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading

import pytest

from provisioner.clock import VirtualClock
from provisioner.cycle.act import Submitter
from provisioner.ledger import Ledger
from provisioner.model import Launch, LaunchResult, LaunchState

from worlds import fake_loop, launches, sim_loop


def test_pacing_spaces_submissions(tmp_path):
    p, _, clock, _ = sim_loop(tmp_path, phones=10, burst=5)
    start = clock.now()
    p.cycle()
    times = sorted(launch.updated_at for launch in p.ledger.since(0))
    assert times[0] == start and times[-1] == pytest.approx(start + 2 * 5)  # 6 launches, 2 s apart


def test_dry_run_launches_nothing(tmp_path):
    p, rec, _, fleet = sim_loop(tmp_path, ledger=False, dry_run=True)
    report = p.cycle()
    assert len(report.plan.launches) == 6
    assert fleet.stats()["launches"] == 0
    assert not [e for e in rec.events if e[0] in ("submitted", "failed")]


def test_each_submission_records_when_it_was_sent_and_how_long_it_took(tmp_path):
    p, rec, clock, fleet = sim_loop(tmp_path, phones=4, burst=2, unit=0)
    fleet.config = dataclasses.replace(fleet.config, upload_seconds=7.0)
    took = 7.0
    p.cycle()
    launches = p.ledger.since(0)
    assert len(launches) == 2 and all(la.state is LaunchState.STARTING for la in launches)
    assert p.ledger.submit_seconds(0) == [took, took]  # the launcher's call, recorded with the job id
    assert all(la.sent_at is not None and la.sent_at - la.submitted_at >= took for la in launches)


def test_a_launcher_returning_a_recorded_job_id_fails_that_launch(tmp_path, backend):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
    fake.pending["proj/p"] = 2
    fake.launch = lambda request: LaunchResult(True, job_id="same")
    p.cycle()
    states = sorted(la.state.value for la in p.ledger.since(0))
    assert states == ["failed", "starting"]
    assert "already recorded" in [la for la in p.ledger.since(0) if la.state is LaunchState.FAILED][0].detail


def test_an_exception_in_a_submission_fails_the_launch_and_frees_the_phone(tmp_path, backend, monkeypatch):
    p, fake, clock = fake_loop(tmp_path, backend=backend)
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

    p, fake, clock = fake_loop(tmp_path)
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


def test_dry_run_never_calls_launch_and_shows_the_render(tmp_path, capfd, log_lines):
    p, fake, clock = fake_loop(tmp_path)
    p.dry_run = True
    fake.pending["proj/p"] = 2
    fake.render = lambda request: f"would run for {request.udid} (dry_run={request.dry_run})"
    report = p.cycle()
    again = p.cycle()
    lines = log_lines.messages("INFO")
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
