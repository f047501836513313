"""Time steps: the wall clock stepped back an hour and forward a day in the middle of a run changes nothing the
loop does (every wait and interval is on the monotonic clock; see provisioner.clock)."""

from __future__ import annotations

import threading

from provisioner.clock import Anchors, VirtualClock, monotonic, monotonic_at
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.model import LaunchResult

from worlds import CONFIG, Fake, fake_world

PACED = CONFIG.replace("launch_interval = 0", "launch_interval = 5\nretry_backoff_seconds = 120\n"
                       "failures_before_hold = 2\nhold_seconds = 1800")
STEPS = {10: -3600.0, 40: 86400.0}  # before cycle n: the wall clock steps by this much


class Stepping(Fake):
    """The fake world, read once a cycle by the real loop: the wall clock steps before the cycles of ``steps``;
    the first launches fail (two failures in a row hold a phone back). Records every launch with the monotonic
    time it was made, and whether its phone was free then."""

    def __init__(self, clock: VirtualClock, steps: dict[int, float]) -> None:
        super().__init__(clock)
        self.steps, self.cycle, self.start = steps, 0, clock.monotonic()
        self.pending["proj/p"] = 3
        self.made: list[tuple[int, float, str, bool]] = []  # (cycle, monotonic offset, phone, ok)
        self.double: list[str] = []
        self.ledger: Ledger | None = None

    def counts(self, queues):  # the first read of a cycle
        self.cycle += 1
        self.clock.step(self.steps.get(self.cycle, 0.0))
        return super().counts(queues)

    def launch(self, request):
        assert self.ledger is not None
        others = [la for la in self.ledger.in_flight() if la.udid == request.udid and la.id != request.launch_id]
        if others:
            self.double.append(request.udid)
        ok = self.clock.monotonic() - self.start > 200  # the submissions of the first 200 s fail
        self.made.append((self.cycle, self.clock.monotonic() - self.start, request.udid, ok))
        if not ok:
            return LaunchResult(False, detail="refused")
        return super().launch(request)


def run(tmp_path, steps: dict[int, float]) -> tuple[Stepping, Ledger, VirtualClock]:
    config, _, clock, _ = fake_world(tmp_path, PACED)
    world = Stepping(clock, steps)
    from provisioner.plugins import Runtime

    runtime = Runtime(config.pools, {role: {"fake": world} for role in ("queue_source", "device_provider", "launcher")})
    ledger = world.ledger = Ledger(tmp_path / "ledger.sqlite3")
    now = clock.now()
    ledger.hold("C", now, now + 1500, "manual", "cable")  # by hand, for 25 minutes
    Provisioner(config, runtime, ledger, clock, inline=True).run(threading.Event(), max_cycles=120)
    return world, ledger, clock


def test_a_stepped_wall_clock_changes_no_launch_pace_cover_or_hold(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "stepped").mkdir()
    plain, _, plain_clock = run(tmp_path / "plain", {})
    stepped, ledger, clock = run(tmp_path / "stepped", STEPS)
    # what the unstepped run does, so that the comparison below compares something
    made = plain.made
    first = [m for m in made if m[0] == 1]
    assert [m[2] for m in first] == ["A", "B"] and [m[1] for m in first] == [0.0, 5.0]  # paced 5 s apart
    assert [m[2:] for m in made if m[1] < 200] == [("A", False), ("B", False), ("A", False), ("B", False)]
    retried = [m[1] for m in made if m[2] == "A"]
    assert 120 <= retried[1] - retried[0] <= 150  # the backoff after one failure
    assert 1800 <= retried[2] - retried[1] <= 1830  # the hold after two
    assert min(m[1] for m in made if m[2] == "C") >= 1500  # the hold by hand
    after_hold = [m[1] for m in made if m[2] == "C"]
    assert len(after_hold) >= 2 and 900 <= after_hold[1] - after_hold[0] <= 930  # covered until max_startup
    # the stepped run: the same launches at the same monotonic times, no phone booked twice
    assert stepped.made == made
    assert stepped.double == plain.double == []
    assert clock.monotonic() == plain_clock.monotonic()
    assert clock.now() - plain_clock.now() == sum(STEPS.values())
    # the ledger records wall times: the rows written after the steps carry the stepped clock
    last = max(ledger.since(0), key=lambda la: la.submitted_at)
    assert last.submitted_at > clock.monotonic() + 80000


def test_a_virtual_step_moves_the_wall_clock_alone():
    clock = VirtualClock(1000.0)
    clock.sleep(30)
    clock.step(-3600)
    clock.advance(10)
    assert (clock.now(), clock.monotonic()) == (1000.0 + 40 - 3600, 1040.0)
    assert monotonic_at(clock, clock.now() + 60) == 1100.0


class OldClock:
    """A plugin's or a test's own clock from before ``monotonic()``: ``now`` and ``sleep`` only."""

    def __init__(self) -> None:
        self.t = 5000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds, wake=None):
        self.t += max(0.0, seconds)


def test_a_clock_without_monotonic_still_runs_the_loop(tmp_path):
    clock = OldClock()
    assert monotonic(clock) == 5000.0  # falls back to now()
    config, fake, _, runtime = fake_world(tmp_path, PACED)
    fake.clock = clock
    fake.pending["proj/p"] = 2
    p = Provisioner(config, runtime, Ledger(tmp_path / "l.sqlite3"), clock, inline=True)
    p.run(threading.Event(), max_cycles=2)
    assert sorted(x[1] for x in fake.launched) == ["A", "B"]
    assert clock.t >= 5000.0 + 30  # the cycle's sleep ran on it


def test_an_anchor_is_taken_once():
    anchors = Anchors()
    assert anchors.of("x", wall=100.0, now=160.0, mono=1000.0) == 940.0
    assert anchors.of("x", wall=100.0, now=160.0 + 86400, mono=1010.0) == 940.0  # a step later changes nothing
    anchors.mark("y", 5.0)
    anchors.keep(lambda key, _: key == "y")
    assert anchors.at == {"y": 5.0}


def test_the_simulated_fleet_sees_the_same_run_when_the_host_clock_steps(tmp_path):
    """The simulated cloud keeps its own time (the monotonic clock) while the host's steps back an hour, then
    forward a day. Stepped back, a worker's older first claim would look newer than our launch; stepped ahead,
    the job list would be read from a day too late and miss every live job. Every cycle decides as without the
    steps."""
    from worlds import sim_loop

    runs = []
    for name, steps in (("plain", {}), ("stepped", {20: -3600.0, 60: 86400.0})):
        (tmp_path / name).mkdir()
        p, rec, clock, fleet = sim_loop(tmp_path / name, phones=10, burst=8)
        cycles = []
        for n in range(1, 120):
            clock.step(steps.get(n, 0.0))
            report = p.cycle()
            clock.advance(30)
            cycles.append(([(d.pool, d.pending, d.starting, d.launches) for d in report.plan.decisions],
                           sorted((la.udid, la.state.value, la.claimed_at is not None) for la in p.ledger.in_flight())))
        runs.append((cycles, fleet.stats(), [e[:3] for e in rec.events if e[0] in ("submitted", "ended")]))
    (plain, plain_stats, plain_events), (stepped, stats, events) = runs
    assert sum(1 for e in plain_events if e[0] == "submitted") >= 8 and plain_stats["wasted"] == 0
    assert stepped == plain and events == plain_events
    assert stats["double_bookings"] == 0 and stats["wasted"] == 0


def test_after_a_wall_step_back_the_ledger_orders_launches_as_they_were_made(tmp_path):
    """A launch added after the wall clock stepped back an hour is still the newest: last in flight, and its
    phone not less recently used than another's used before the step (both were ordered by the recorded wall
    time: the phone just used looked the least recently used)."""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        first = ledger.add("p", "A", 10_000.0)
        second = ledger.add("p", "B", 10_030.0)
        third = ledger.add("p", "A", 6_460.0)  # the wall clock stepped back an hour
        assert [la.id for la in ledger.in_flight()] == [first.id, second.id, third.id]
        assert ledger.last_used() == {"A": 10_030.0, "B": 10_030.0}  # A is no less recently used than B
    finally:
        ledger.close()
