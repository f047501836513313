"""A ledger that cannot be written mid-run: no watchdog ping and no launch until a write succeeds again, no write
forgotten, and memory and the ledger agree afterwards.

How the ledger is made unwritable: ``PRAGMA query_only`` on the daemon's own SQLite connection, set and cleared from
the test. SQLite then refuses every write of the real write path with the error of a read-only database
(SQLITE_READONLY, "attempt to write a readonly database"), whoever runs the test. A ``chmod`` of the state
directory would not do: CI runs the tests as root, whom no mode stops, and even for another user the daemon's
database and WAL files are open already (modes are checked when a file is opened, not at each write). Neither a
read-only bind mount nor a tiny full tmpfs can be made in CI's container.
"""

from __future__ import annotations

import sqlite3
import threading

from provisioner import notify
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.model import JobState, LaunchState
from provisioner.plugins import Runtime

from worlds import CONFIG, Fake, fake_world

READONLY = range(3, 6)  # the cycles during which the ledger cannot be written (from inside cycle 3's launch)


class World(Fake):
    """The fake world the real loop reads once a cycle; it makes the ledger unwritable in the middle of cycle 3
    (while its launch is with the cloud) and writable again at the start of cycle 6."""

    def __init__(self, clock, path) -> None:
        super().__init__(clock)
        self.path, self.cycle, self.db = path, 0, None
        self.unwritten: list[str] = []  # launches submitted whose row the ledger did not hold as submitting
        self.memory_ahead: list[tuple[str, str]] = []  # (launch, state) memory held but the disk did not, cycle 5

    def counts(self, queues):
        self.cycle += 1
        if self.cycle == 2:
            for _, _, job_id in self.launched:
                self.job(job_id, JobState.RUNNING)
        if self.cycle == 3:
            self.pending["proj/p"] = 3  # one more task: a launch on C
        if self.cycle == 4:
            self.job("job-0", JobState.ENDED)  # its ending is written in a batch the ledger refuses
            self.pending["proj/s"] = 1  # a launch is wanted while the ledger cannot be written
        if self.cycle == 5:
            disk = {row[0]: row[1] for row in self.rows()}
            self.memory_ahead = [(la.id, la.state.value) for la in self.ledger.in_flight() if disk[la.id] != la.state.value]
        if self.cycle == 6:
            self.db.execute("PRAGMA query_only = 0")
        return super().counts(queues)

    def rows(self) -> list[tuple]:
        with sqlite3.connect(self.path) as other:  # another connection: what the database holds
            return other.execute("SELECT id, state, job_id, udid FROM launches").fetchall()

    def launch(self, request):
        if (request.launch_id, "submitting") not in {r[:2] for r in self.rows()}:
            self.unwritten.append(request.launch_id)
        result = super().launch(request)
        if self.cycle == 3:  # the disk goes read-only while the cloud starts the job
            self.db.execute("PRAGMA query_only = 1")
        return result


def test_an_unwritable_ledger_stops_the_watchdog_and_launches_until_it_is_written_again(tmp_path, monkeypatch):
    config, _, clock, _ = fake_world(tmp_path, CONFIG)
    path = tmp_path / "state" / "ledger.sqlite3"
    path.parent.mkdir()
    world = World(clock, path)
    world.pending["proj/p"] = 2
    runtime = Runtime(config.pools, {role: {"fake": world} for role in ("queue_source", "device_provider", "launcher")})
    ledger = world.ledger = Ledger(path)
    world.db = ledger._db
    p = Provisioner(config, runtime, ledger, clock, inline=True)
    fed, said = [], []
    monkeypatch.setattr(notify, "watchdog", lambda status="": fed.append(status))
    monkeypatch.setattr(notify, "notify", lambda message: said.append(message))
    reports = []
    p.hooks = lambda name, report: reports.append(report)  # the cycle reports an observer gets (for the alerts)

    p.run(threading.Event(), max_cycles=8)

    # the watchdog: fed by cycles 1, 2 and 6 on, never while the ledger could not be written
    assert fed == [f"cycle {n}" for n in (1, 2, 6, 7, 8)]
    # the cycle report (handed to observers before the cycle launches) says so from the cycle after the refusal
    assert [r.cycle for r in reports if r.ledger_error] == [4, 5]
    assert len(said) == len(READONLY) and all("ledger cannot be written: OperationalError: attempt to write a "
                                              "readonly database" in s for s in said)
    # launches: A and B, then C (whose job the cloud started as the disk went read-only), none while it was (A's
    # job ended, a task of s came), then A again and S
    assert [x[:2] for x in world.launched] == [("p", "A"), ("p", "B"), ("p", "C"), ("p", "A"), ("s", "")]
    assert world.unwritten == []  # each launch's row was written (submitting) before it was submitted
    # while unwritable, memory held what the database refused (C started, its job known), kept and retried
    assert len(world.memory_ahead) == 1 and world.memory_ahead[0][1] == "starting"
    # afterwards: no error, and the ledger holds every launch memory holds, as memory holds it
    assert p.ledger_error is None and ledger.write_error is None
    memory = {(la.id, la.state.value, la.job_id, la.udid) for la in ledger.in_flight()}
    disk = {row for row in world.rows() if LaunchState(row[1]).in_flight}
    assert memory == disk and len(memory) == 4  # B, C, A again and S in flight
    assert ("ended", "job-0") in {row[1:3] for row in world.rows() if row[3] == "A"}  # written after the window
    (c,) = [row for row in world.rows() if row[3] == "C"]
    assert c[1:3] == ("starting", "job-2")


def test_a_refused_write_kept_pending_goes_first_once_the_database_takes_writes(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    one, two = ledger.add("p", "A", 10.0), ledger.add("p", "B", 10.0)
    ledger._db.execute("PRAGMA query_only = 1")
    assert ledger.update(one.id, LaunchState.FAILED, 11.0, keep=True, detail="x")  # kept: memory moves it
    assert ledger.write_error and "readonly" in ledger.write_error
    try:
        ledger.update(two.id, LaunchState.FAILED, 12.0)  # not kept: refused, and memory keeps it as it was
    except sqlite3.OperationalError:
        pass
    else:
        raise AssertionError("a refused write that is not kept raises")
    assert [la.id for la in ledger.in_flight()] == [two.id]
    ledger._db.execute("PRAGMA query_only = 0")
    ledger.update(two.id, LaunchState.CANCELLED, 13.0)  # the pending write goes first
    assert ledger.write_error is None
    assert {la.id: la.state for la in ledger.since(0)} == {one.id: LaunchState.FAILED, two.id: LaunchState.CANCELLED}
