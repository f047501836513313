"""Phone health: phones whose jobs keep failing are held back for a while; holds and releases by hand."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

from provisioner.clock import VirtualClock
from provisioner.config import load
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.manager import PluginManager
from provisioner.model import JobState, LaunchResult, LaunchState
from provisioner.plugins import build

CONFIG = """
[provisioner]
interval = 30
launch_interval = 0
seed = 1
failures_before_hold = 3
retry_backoff_seconds = 60
hold_seconds = 3600
job_failures_before_hold = 2
job_failure_window_seconds = 3600
job_failure_hold_seconds = 1800
state_dir = "state"
{health}
[defaults]
queue_source = "sim"
device_provider = "sim"
launcher = "sim"
[pools.perf]
queue = "proj/perf"
selector = {{ model = "A55" }}
[pools.unit]
queue = "proj/unit"
udids = ["SIM0001", "SIM0003"]
[plugins.sim]
seed = 3
phones = {phones}
models = ["A55", "A51"]
startup_seconds = 60
task_seconds = 120
idle_timeout_seconds = 60
list_lag_seconds = 30
[plugins.sim.queues]
"proj/perf" = {{ burst = {perf} }}
"proj/unit" = {{ burst = {unit} }}
{extra}
"""


def write(tmp_path: Path, phones: int = 6, perf: int = 0, unit: int = 0, extra: str = "", health: str = "") -> Path:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(CONFIG.format(phones=phones, perf=perf, unit=unit, extra=extra, health=health)))
    return path


def make(tmp_path: Path, clock: VirtualClock | None = None, tweak=None, **kwargs):
    """A provisioner on the simulated fleet and a virtual clock; returns (provisioner, runtime, clock)."""
    config, problems = load(write(tmp_path, **kwargs))
    assert not problems
    from provisioner.types import PluginContext

    clock = clock or VirtualClock()
    context = PluginContext(clock=clock, state_dir=tmp_path / "state", environ={}, job_tag=config.settings.job_tag)
    runtime, problems = build(config, PluginManager(entry_points_=[]), context)
    assert not problems
    if tweak:
        tweak(runtime)
    ledger = Ledger(config.settings.state_dir / "ledger.sqlite3")
    return Provisioner(config, runtime, ledger, clock, inline=True), runtime, clock


def failing_submissions(udid: str, detail: str):
    """A tweak for ``make``: every submission on ``udid`` fails with ``detail``."""

    def tweak(runtime) -> None:
        launcher = runtime.objects["launcher"]["sim"]
        real = launcher.launch
        launcher.launch = lambda r: LaunchResult(False, detail=detail) if r.udid == udid else real(r)

    return tweak


def ended(ledger: Ledger, udid: str, outcome: str, at: float, pool: str = "perf") -> None:
    launch = ledger.add(pool, udid, at - 100)
    ledger.update(launch.id, LaunchState.ENDED, at, outcome=outcome, job_id=f"job-{udid}-{at}")


def test_failing_jobs_hold_a_phone_once_then_it_is_released(tmp_path, log_lines):
    p, _, clock = make(tmp_path)
    now = clock.now()
    ended(p.ledger, "SIM0002", "failed", now - 300)
    assert "SIM0002" not in p.held_back(now)  # one failure is not enough
    ended(p.ledger, "SIM0002", "lambda_error", now - 10)
    held = p.holds(now)
    assert held["SIM0002"] == (now + 1800, "held: 2 failed jobs in a row")
    assert sum("phone SIM0002 held back for 1800 s after 2 failed jobs in a row" in line for line in log_lines) == 1
    clock.advance(60)
    assert "SIM0002" in p.held_back(clock.now())
    assert [h.source for h in p.ledger.holds(clock.now())] == ["jobs"]  # recorded once, not each cycle
    clock.advance(1800)
    assert "SIM0002" not in p.held_back(clock.now())  # released after, and the old failures do not hold it again
    assert any("phone SIM0002 is no longer held back" in line for line in log_lines)
    ended(p.ledger, "SIM0002", "timeout", clock.now())
    assert "SIM0002" not in p.held_back(clock.now())
    ended(p.ledger, "SIM0002", "timeout", clock.now() + 1)
    assert "SIM0002" in p.held_back(clock.now() + 1)  # two new failures: held again


def test_a_good_job_cuts_the_run_and_old_failures_do_not_count(tmp_path):
    p, _, clock = make(tmp_path)
    now = clock.now()
    ended(p.ledger, "SIM0002", "failed", now - 300)
    ended(p.ledger, "SIM0002", "completed", now - 200)
    ended(p.ledger, "SIM0002", "failed", now - 100)
    ended(p.ledger, "SIM0004", "failed", now - 4000)  # outside the window of an hour
    ended(p.ledger, "SIM0004", "failed", now - 100)
    ended(p.ledger, "SIM0006", "aborted", now - 200)  # not a failure outcome: cuts the run too
    ended(p.ledger, "SIM0006", "failed", now - 100)
    assert p.held_back(now) == {}


def test_the_failure_outcomes_are_configurable(tmp_path):
    p, _, clock = make(tmp_path, health='job_failure_outcomes = ["aborted"]')
    assert p.settings.job_failure_outcomes == ("aborted",)
    now = clock.now()
    ended(p.ledger, "SIM0002", "aborted", now - 20)
    ended(p.ledger, "SIM0002", "aborted", now - 10)
    ended(p.ledger, "SIM0004", "failed", now - 20)
    ended(p.ledger, "SIM0004", "failed", now - 10)
    assert set(p.held_back(now)) == {"SIM0002"}


def test_bad_health_settings_are_one_line_each(tmp_path):
    path = write(tmp_path, health='job_failure_outcomes = ["", 3]')
    text = path.read_text().replace("job_failures_before_hold = 2", "job_failures_before_hold = 0")
    path.write_text(text.replace("job_failure_hold_seconds = 1800", "job_failure_hold_seconds = -1"))
    _, problems = load(path)
    assert sorted(p.key for p in problems) == [
        "provisioner.job_failure_hold_seconds", "provisioner.job_failure_outcomes", "provisioner.job_failures_before_hold",
    ]


def test_a_hold_by_hand_and_a_release(tmp_path, log_lines):
    p, _, clock = make(tmp_path)
    now = clock.now()
    p.ledger.hold("SIM0002", now, now + 7200, "manual", "screen cracked")
    assert p.holds(now)["SIM0002"] == (now + 7200, "held by hand: screen cracked")
    clock.advance(60)
    assert p.ledger.release("SIM0002", clock.now(), "fixed") == 1
    assert "SIM0002" not in p.held_back(clock.now())
    assert any("phone SIM0002 is no longer held back" in line for line in log_lines)
    assert p.ledger.release("SIM0002", clock.now()) == 0  # nothing left to end; the release is still recorded
    assert [h.source for h in p.ledger.hold_history(now)] == ["manual", "release", "release"]


def test_a_release_forgives_failed_submissions(tmp_path):
    p, _, clock = make(tmp_path)
    now = clock.now()
    for i in range(3):
        launch = p.ledger.add("unit", "SIM0001", now - 30 + i)
        p.ledger.update(launch.id, LaunchState.FAILED, now - 30 + i, detail="CLI exited 1")
    until, reason = p.holds(now)["SIM0001"]
    assert reason == "3 failed submissions in a row" and until > now + 3000
    p.ledger.release("SIM0001", now + 1)
    assert "SIM0001" not in p.held_back(now + 1)
    launch = p.ledger.add("unit", "SIM0001", now + 2)
    p.ledger.update(launch.id, LaunchState.FAILED, now + 2, detail="CLI exited 1")
    assert p.holds(now + 3)["SIM0001"][1] == "1 failed submission in a row"  # a fresh start: a short backoff


def test_the_loop_stops_launching_on_a_phone_whose_jobs_fail(tmp_path, log_lines):
    """End to end on the simulated fleet: SIM0001's jobs end failed; after two it gets no launch for a while."""

    def fail_sim0001(runtime):
        provider = runtime.objects["device_provider"]["sim"]
        real = provider.jobs

        def jobs(since):
            return [
                dataclasses.replace(j, outcome="failed") if j.udid == "SIM0001" and j.state is JobState.ENDED else j
                for j in real(since)
            ]

        provider.jobs = jobs

    p, runtime, clock = make(tmp_path, tweak=fail_sim0001, unit=50)
    on_sim0001 = []
    for _ in range(120):
        report = p.cycle()
        on_sim0001 += [clock.now() for launch in report.plan.launches if launch.udid == "SIM0001"]
        clock.advance(30)
    assert any("phone SIM0001 held back for 1800 s after 2 failed jobs in a row" in line for line in log_lines)
    holds = [h for h in p.ledger.hold_history(0) if h.udid == "SIM0001"]
    assert holds and all(h.source == "jobs" for h in holds)
    first = holds[0]
    assert not [t for t in on_sim0001 if first.since <= t < first.until]  # no launch while held
    assert [t for t in on_sim0001 if t >= first.until]  # and launches again after
    assert "SIM0003" not in {h.udid for h in holds}


def test_dry_run_records_no_hold(tmp_path):
    p, _, clock = make(tmp_path)
    now = clock.now()
    ended(p.ledger, "SIM0002", "failed", now - 20)
    ended(p.ledger, "SIM0002", "failed", now - 10)
    dry = Provisioner(p.config, p.runtime, p.ledger, clock, dry_run=True, inline=True)
    assert dry.held_back(now) == {}
    assert p.ledger.holds(now) == []


def test_failed_submission_backoff_still_works_with_holds(tmp_path):
    p, _, clock = make(tmp_path, tweak=failing_submissions("SIM0001", "broken yaml"), unit=50)
    tried = []
    for _ in range(30):
        tried += [clock.now() for launch in p.cycle().plan.launches if launch.udid == "SIM0001"]
        clock.advance(30)
    assert [t - tried[0] for t in tried] == [0, 60, 180]


def test_failed_submissions_are_read_only_for_phones_that_failed_lately(tmp_path, log_lines):
    p, _, clock = make(tmp_path)
    now = clock.now()

    def fail_three(udid: str, at: float) -> None:
        for i in range(3):
            launch = p.ledger.add("unit", udid, at + i)
            p.ledger.update(launch.id, LaunchState.FAILED, at + i, detail="CLI exited 1")

    fail_three("SIM0001", now - 10_000)  # long ago: its hold is over
    fail_three("SIM0003", now - 10)
    assert set(p.ledger.recent_failures(3, since=now - 3600)) == {"SIM0003"}
    assert set(p.ledger.recent_failures(3, since=now - 20_000)) == {"SIM0001", "SIM0003"}
    assert set(p.held_back(now)) == {"SIM0003"}
    later = now + 3600
    assert p.held_back(later) == {}
    fail_three("SIM0003", later)  # held again later: logged again
    assert set(p.held_back(later + 3)) == {"SIM0003"}
    assert sum("phone SIM0003 held back" in line for line in log_lines) == 2


def test_a_hold_the_ledger_refuses_is_kept_and_written_once_it_can_be(tmp_path, log_lines):
    """The ledger made unwritable as in test_ledger_unwritable (``PRAGMA query_only`` on the daemon's connection):
    the hold of a phone whose jobs keep failing is kept, the cycle still reports (no launch, the ledger's error
    said), and the hold is written, once, when the ledger can be written again."""
    p, _, clock = make(tmp_path, unit=2)
    now = clock.now()
    ended(p.ledger, "SIM0001", "failed", now - 300)
    ended(p.ledger, "SIM0001", "lambda_error", now - 10)
    p.ledger._db.execute("PRAGMA query_only = ON")
    report = p.cycle()  # no traceback out of the cycle
    assert report.ledger_error is not None and "readonly" in report.ledger_error
    assert report.plan.launches == () and p.ledger.holds(clock.now()) == []
    p.ledger._db.execute("PRAGMA query_only = OFF")
    clock.advance(30)
    report = p.cycle()
    assert report.ledger_error is None
    assert [(h.udid, h.source) for h in p.ledger.holds(clock.now())] == [("SIM0001", "jobs")]
    assert "SIM0001" in p.held_back(clock.now())
    assert all(x.udid != "SIM0001" for x in report.plan.launches)
    assert sum("phone SIM0001 held back for 1800 s" in line for line in log_lines) == 1


def test_a_fenced_hold_is_logged_once_and_made_again_next_cycle(tmp_path, log_lines):
    """A hold write the fence refuses (another daemon took over between the lease check and the write): one error
    line, a cycle report all the same, and the hold made again next cycle."""
    from provisioner.ledger.store import Fenced

    p, _, clock = make(tmp_path)
    ended(p.ledger, "SIM0001", "failed", clock.now() - 300)
    ended(p.ledger, "SIM0001", "lambda_error", clock.now() - 10)
    real = p.ledger.hold

    def fenced(*args, **kwargs):
        raise Fenced("epoch 1 is no longer current (now 2): another daemon took over")

    p.ledger.hold = fenced
    assert p.cycle().cycle == 1
    assert [line for line in log_lines.messages("ERROR") if "its hold could not be recorded" in line] == [
        "phone SIM0001: its hold could not be recorded: epoch 1 is no longer current (now 2): another daemon took "
        "over; tried again next cycle"]
    p.ledger.hold = real
    clock.advance(30)
    p.cycle()
    assert [(h.udid, h.source) for h in p.ledger.holds(clock.now())] == [("SIM0001", "jobs")]
