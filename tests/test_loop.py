"""The loop against the simulated fleet on a virtual clock: observe, plan, act, record."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from provisioner.clock import VirtualClock
from provisioner.config import load
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.manager import PluginManager
from provisioner.model import LaunchResult, LaunchState
from provisioner.plugins import build
from provisioner.types import PluginContext, RemoteError

CONFIG = """
[provisioner]
interval = 30
launch_interval = 2
max_startup_seconds = 600
failures_before_hold = 3
retry_backoff_seconds = 60
hold_seconds = 3600
seed = 1
[defaults]
queue_source = "sim"
device_provider = "sim"
launcher = "sim"
[pools.perf]
queue = "proj/perf"
selector = {{ model = "A55" }}
priority = 5
[pools.unit]
queue = "proj/unit"
udids = ["SIM0001", "SIM0003"]
[plugins.sim]
seed = 3
phones = {phones}
models = ["A55", "A51"]
startup_seconds = 210
task_seconds = 600
idle_timeout_seconds = 120
list_lag_seconds = 90
[plugins.sim.queues]
"proj/perf" = {{ burst = {burst} }}
"proj/unit" = {{ burst = {unit} }}
"""


class Recorder:
    """An observer plugin: remembers every event."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def provisioner_cycle(self, report):
        self.events.append(("cycle", report.cycle, len(report.plan.launches)))

    def provisioner_launch_submitted(self, launch, result):
        self.events.append(("submitted", launch.pool, launch.udid, result.job_id))

    def provisioner_launch_failed(self, launch, result):
        self.events.append(("failed", launch.pool, launch.udid, result.detail))

    def provisioner_launch_ended(self, launch):
        self.events.append(("ended", launch.pool, launch.udid, launch.outcome))

    def provisioner_launch_running(self, launch):
        self.events.append(("running", launch.pool, launch.udid, launch.updated_at - launch.submitted_at))


def make(tmp_path: Path, phones=10, burst=5, unit=1, clock=None, ledger=True, dry_run=False, tweak=None):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(CONFIG.format(phones=phones, burst=burst, unit=unit)))
    config, problems = load(path)
    assert not problems
    manager = PluginManager(entry_points_=[])
    from provisioner import hookimpl

    recorder = Recorder()
    for name in ("provisioner_cycle", "provisioner_launch_submitted", "provisioner_launch_failed",
                 "provisioner_launch_ended", "provisioner_launch_running"):
        setattr(recorder, name, hookimpl(getattr(recorder, name).__func__).__get__(recorder))
    manager.register(recorder, "recorder")
    clock = clock or VirtualClock()
    context = PluginContext(clock=clock, state_dir=tmp_path / "state", environ={}, job_tag=config.settings.job_tag)
    runtime, problems = build(config, manager, context)
    assert not problems
    if tweak:
        tweak(runtime)
    db = Ledger(tmp_path / "state" / "ledger.sqlite3") if ledger else None
    p = Provisioner(config, runtime, db, clock, hook=manager.hook, dry_run=dry_run, inline=True)
    return p, recorder, clock, runtime.objects["launcher"]["sim"].fleet


def test_a_burst_fills_phones_without_double_booking(tmp_path):
    p, rec, clock, fleet = make(tmp_path, phones=10, burst=5)
    report = p.cycle()
    assert len(report.plan.launches) == 6  # 5 perf on A55 phones, 1 unit on its own phone
    assert report.reads == {"sim: counts": "ok", "sim: workers": "ok", "sim: phones": "ok", "sim: jobs": "ok"}
    perf = [launch for launch in p.ledger.in_flight() if launch.pool == "perf"]
    assert len(perf) == 5 and all(launch.state is LaunchState.STARTING and launch.job_id for launch in perf)
    for _ in range(40):  # 20 minutes of fleet time: the device list lags, tasks run and end
        clock.advance(30)
        p.cycle()
    stats = fleet.stats()
    assert stats["double_bookings"] == 0
    assert stats["wasted"] == 0
    assert [e for e in rec.events if e[0] == "submitted"][:1]
    running = [e for e in rec.events if e[0] == "running"]
    assert len(running) == 6 and all(210 <= e[3] <= 270 for e in running)  # seen running the cycle after startup
    ended = [e for e in rec.events if e[0] == "ended"]
    assert len(ended) == 6 and {e[3] for e in ended} == {"completed"}
    assert p.ledger.in_flight() == []


def test_pacing_spaces_submissions(tmp_path):
    p, _, clock, _ = make(tmp_path, phones=10, burst=5)
    start = clock.now()
    p.cycle()
    times = sorted(launch.updated_at for launch in p.ledger.since(0))
    assert times[0] == start and times[-1] == pytest.approx(start + 2 * 5)  # 6 launches, 2 s apart


def test_unknown_remote_data_means_no_launch_and_the_loop_goes_on(tmp_path, log_lines):
    calls = {"n": 0}

    def break_phones(runtime):
        provider = runtime.objects["device_provider"]["sim"]
        real = provider.phones

        def phones():
            calls["n"] += 1
            if calls["n"] == 1:
                raise RemoteError("GET devices: HTTP 503")
            if calls["n"] == 2:
                raise ValueError("garbage")
            return real()

        provider.phones = phones

    p, _, clock, _ = make(tmp_path, tweak=break_phones)
    assert p.cycle().plan.launches == ()
    assert any("unknown this cycle: sim: phones: GET devices: HTTP 503" in line for line in log_lines)
    clock.advance(30)
    assert p.cycle().plan.launches == ()
    assert any("plugin error ValueError: garbage" in line for line in log_lines)
    clock.advance(30)
    assert len(p.cycle().plan.launches) == 6  # back to normal the cycle after


def test_failing_phone_backs_off_then_is_held(tmp_path, log_lines):
    def fail_on_sim0001(runtime):
        launcher = runtime.objects["launcher"]["sim"]
        real = launcher.launch

        def launch(request):
            if request.udid == "SIM0001":
                return LaunchResult(False, detail="CLI exited 1: yaml broken")
            return real(request)

        launcher.launch = launch

    p, rec, clock, fleet = make(tmp_path, phones=4, burst=0, unit=100, tweak=fail_on_sim0001)
    tried = []
    for _ in range(60):
        report = p.cycle()
        tried += [clock.now() for launch in report.plan.launches if launch.udid == "SIM0001"]
        clock.advance(30)
    assert [t - tried[0] for t in tried] == [0, 60, 180]  # backoff doubles: 60 s, then 120 s
    failures = [e for e in rec.events if e[0] == "failed"]
    assert len(failures) == 3  # after 3 in a row, held back for an hour
    assert all("yaml broken" in e[3] for e in failures)
    assert sum("phone SIM0001 held back" in line for line in log_lines) == 1
    assert p.held_back(clock.now()).get("SIM0001", 0) > clock.now()


def test_restart_reloads_launches_in_flight(tmp_path):
    clock = VirtualClock()
    p, _, _, _ = make(tmp_path, phones=10, burst=5, clock=clock)
    first = {launch.udid for launch in p.cycle().plan.launches}
    p.ledger.close()
    # A new process: a fresh simulated cloud whose device list says every phone is idle, and no jobs.
    clock.advance(5)
    again, _, _, _ = make(tmp_path, phones=20, burst=10, clock=clock)
    second = {launch.udid for launch in again.cycle().plan.launches}
    assert first and second and not first & second


def test_queued_launches_are_cancelled_on_restart(tmp_path):
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite3")
    queued = ledger.add("perf", "SIM0000", 100.0)
    submitting = ledger.add("perf", "SIM0002", 100.0)
    ledger.update(submitting.id, LaunchState.SUBMITTING, 101.0)
    ledger.close()
    p, _, _, _ = make(tmp_path)
    assert p.ledger.get(queued.id).state is LaunchState.CANCELLED
    assert p.ledger.get(submitting.id).state is LaunchState.SUBMITTING  # may have gone through: still in flight


def test_dry_run_launches_nothing(tmp_path):
    p, rec, _, fleet = make(tmp_path, ledger=False, dry_run=True)
    report = p.cycle()
    assert len(report.plan.launches) == 6
    assert fleet.stats()["launches"] == 0
    assert not [e for e in rec.events if e[0] in ("submitted", "failed")]


def test_a_launch_never_seen_stops_counting_after_max_startup(tmp_path):
    def lose_jobs(runtime):
        runtime.objects["device_provider"]["sim"].jobs = lambda since: []

    p, rec, clock, _ = make(tmp_path, phones=2, burst=1, tweak=lose_jobs)
    p.cycle()
    assert len(p.ledger.in_flight()) == 2
    clock.advance(601)
    p.cycle()
    outcomes = {e[3] for e in rec.events if e[0] == "ended"}
    assert outcomes == {"never seen"}


def test_an_observer_that_raises_is_not_fatal(tmp_path, log_lines):
    p, rec, _, _ = make(tmp_path)

    def boom(report):
        raise RuntimeError("metrics down")

    rec.provisioner_cycle = None  # replaced below through the hook caller
    p.hooks._hook = type("H", (), {"provisioner_cycle": staticmethod(boom),
                                    "provisioner_launch_submitted": staticmethod(lambda **k: None)})()
    p.cycle()
    assert any("an observer plugin failed in provisioner_cycle: RuntimeError: metrics down" in line for line in log_lines)


def test_unknown_job_list_means_no_launch(tmp_path, log_lines):
    def break_jobs(runtime):
        def jobs(since):
            raise RemoteError("GET jobs: read timed out")

        runtime.objects["device_provider"]["sim"].jobs = jobs

    p, _, _, _ = make(tmp_path, tweak=break_jobs)
    report = p.cycle()
    assert report.plan.launches == ()
    assert {d.reason for d in report.plan.decisions} == {"phones or jobs unknown: no launch"}
    assert any("unknown this cycle: sim: jobs: GET jobs: read timed out" in line for line in log_lines)


def test_a_launch_of_a_pool_removed_from_the_config_is_closed(tmp_path):
    p, rec, clock, _ = make(tmp_path, phones=4, burst=1)
    p.cycle()
    assert {launch.pool for launch in p.ledger.in_flight()} == {"perf", "unit"}
    del p.pools["unit"]  # as after an edit of the config and a restart
    p.cycle()
    assert {launch.pool for launch in p.ledger.in_flight()} == {"perf"}
    assert ("ended", "unit", "SIM0001", "pool removed") in rec.events or ("ended", "unit", "SIM0003", "pool removed") in rec.events


def test_a_phone_stays_booked_while_its_job_is_listed_starting_past_the_startup_limit(tmp_path):
    """The device list says idle and the job is still `initiated` after max_startup_seconds: no second launch."""
    p, _, clock, fleet = make(tmp_path, phones=2, burst=3)
    p.settings = type(p.settings)(**{**p.settings.__dict__, "max_startup_seconds": 60})
    first = p.cycle().plan.launches
    assert [launch.pool for launch in first] == ["perf", "unit"]  # the one A55 phone, the one unit phone
    clock.advance(80)  # past max_startup_seconds, the job still starting (210 s), the list lagging (90 s)
    assert p.cycle().plan.launches == ()
    assert fleet.stats()["double_bookings"] == 0


def test_the_watchdog_is_fed_only_by_cycles_that_complete(tmp_path, monkeypatch):
    import threading

    from provisioner import loop as loop_module

    fed = []
    monkeypatch.setattr(loop_module.notify, "watchdog", lambda status="", environ=None: fed.append(status))
    p, _, _, _ = make(tmp_path)
    real, calls = p.cycle, {"n": 0}

    def cycle():
        calls["n"] += 1
        if calls["n"] % 2:
            p.cycles += 1
            raise OSError("ledger not writable")
        return real()

    p.cycle = cycle
    p.run(threading.Event(), max_cycles=4)
    assert fed == ["cycle 2", "cycle 4"]


def test_a_plugin_answering_the_wrong_types_is_unknown_not_a_crash(tmp_path, log_lines):
    def garbage(runtime):
        runtime.objects["queue_source"]["sim"].counts = lambda queues: {q: 5 for q in queues}

    p, _, _, _ = make(tmp_path, tweak=garbage)
    report = p.cycle()
    assert report.plan.launches == ()
    assert report.reads["sim: counts"] == "plugin_error"
    assert any("sim: counts: plugin error TypeError: answered int, not QueueCounts" in line for line in log_lines)


def test_a_pools_line_is_info_only_when_it_changed_or_launched_and_every_cycle_has_a_summary(tmp_path, log_lines):
    p, rec, clock, fleet = make(tmp_path, phones=4, burst=0, unit=0)
    for _ in range(3):
        p.cycle()
        clock.advance(30)
    perf = [line for line in log_lines if line.split(" ", 2)[1:2] == ["pool"] and " perf:" in line]
    assert [line.split(" ", 1)[0] for line in perf] == ["INFO", "DEBUG", "DEBUG"]  # the same line thrice
    assert perf[1].split(" ", 1)[1] == perf[0].split(" ", 1)[1]
    assert sum(line.startswith("INFO cycle ") for line in log_lines) == 3
    fleet.add_tasks("proj/perf", 1)  # a task arrives: the pool's line changes (and it launches)
    log_lines.clear()
    p.cycle()
    assert [line.split(" ", 1)[0] for line in log_lines if " pool perf:" in line] == ["INFO"]
    assert [line.split(" ", 1)[0] for line in log_lines if " pool unit:" in line] == ["DEBUG"]


def test_each_submission_records_when_it_was_sent_and_how_long_it_took(tmp_path):
    p, rec, clock, fleet = make(tmp_path, phones=4, burst=2, unit=0)
    fleet.config = dataclasses.replace(fleet.config, upload_seconds=7.0)
    took = 7.0
    p.cycle()
    launches = p.ledger.since(0)
    assert len(launches) == 2 and all(la.state is LaunchState.STARTING for la in launches)
    assert p.ledger.submit_seconds(0) == [took, took]  # the launcher's call, recorded with the job id
    assert all(la.sent_at is not None and la.sent_at - la.submitted_at >= took for la in launches)


def test_the_collector_is_settled_once_after_collecting_what_is_garbage_already():
    import subprocess
    import sys

    code = textwrap.dedent("""
        import gc, weakref
        from provisioner.runtime import settle_collector
        class Node: pass
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        gone = weakref.ref(a)
        del a, b
        settle_collector()
        frozen = gc.get_freeze_count()
        settle_collector()
        print(gone() is None, frozen > 0, gc.get_freeze_count() == frozen, gc.get_threshold())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True", "(50000,", "10,", "10)"]
