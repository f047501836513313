"""loop.py: the rooms in order against the simulated fleet on a virtual clock; restarts, observers, the watchdog,
the cycle's log lines."""

from __future__ import annotations

import textwrap

from provisioner.clock import VirtualClock
from provisioner.ledger import Ledger
from provisioner.model import LaunchState

from worlds import fake_loop, sim_loop


def test_a_burst_fills_phones_without_double_booking(tmp_path):
    p, rec, clock, fleet = sim_loop(tmp_path, phones=10, burst=5)
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


def test_restart_reloads_launches_in_flight(tmp_path):
    clock = VirtualClock()
    p, _, _, _ = sim_loop(tmp_path, phones=10, burst=5, clock=clock)
    first = {launch.udid for launch in p.cycle().plan.launches}
    p.ledger.close()
    # A new process: a fresh simulated cloud whose device list says every phone is idle, and no jobs.
    clock.advance(5)
    again, _, _, _ = sim_loop(tmp_path, phones=20, burst=10, clock=clock)
    second = {launch.udid for launch in again.cycle().plan.launches}
    assert first and second and not first & second


def test_queued_launches_are_cancelled_on_restart(tmp_path):
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite3")
    queued = ledger.add("perf", "SIM0000", 100.0)
    submitting = ledger.add("perf", "SIM0002", 100.0)
    ledger.update(submitting.id, LaunchState.SUBMITTING, 101.0)
    ledger.close()
    p, _, _, _ = sim_loop(tmp_path)
    assert p.ledger.get(queued.id).state is LaunchState.CANCELLED
    assert p.ledger.get(submitting.id).state is LaunchState.SUBMITTING  # may have gone through: still in flight


def test_an_observer_that_raises_is_not_fatal(tmp_path, log_lines):
    p, rec, _, _ = sim_loop(tmp_path)

    def boom(report):
        raise RuntimeError("metrics down")

    rec.provisioner_cycle = None  # replaced below through the hook caller
    p.hooks._hook = type("H", (), {"provisioner_cycle": staticmethod(boom),
                                    "provisioner_launch_submitted": staticmethod(lambda **k: None)})()
    p.cycle()
    assert any("an observer plugin failed in provisioner_cycle: RuntimeError: metrics down" in line for line in log_lines)


def test_the_watchdog_is_fed_only_by_cycles_that_complete(tmp_path, monkeypatch):
    import threading

    from provisioner import loop as loop_module

    fed = []
    monkeypatch.setattr(loop_module.notify, "watchdog", lambda status="", environ=None: fed.append(status))
    p, _, _, _ = sim_loop(tmp_path)
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


def test_a_pools_line_is_info_only_when_it_changed_or_launched_and_every_cycle_has_a_summary(tmp_path, log_lines):
    p, rec, clock, fleet = sim_loop(tmp_path, phones=4, burst=0, unit=0)
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


def test_a_pools_line_is_logged_when_it_changes_or_launches_and_one_summary_each_cycle(tmp_path, log_lines):
    p, fake, clock = fake_loop(tmp_path)
    for _ in range(3):
        p.cycle()
    fake.pending["proj/p"] = 1
    p.cycle()
    lines = log_lines.messages("INFO")
    assert [line.split(":")[0] for line in lines if line.startswith("pool ")] == ["pool p", "pool s", "pool p"]
    assert [line.split(":")[0] for line in lines if line.startswith("cycle ")] == [f"cycle {i}" for i in range(1, 5)]


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
