"""Warm workers: the arrival-rate estimate, the warm target, a warm launch's life in the loop (recorded at act,
covering until its idle timeout, an idle-out when it ends unclaimed), where idle-outs are shown, and the busy
scenarios in which warm workers must pay for themselves."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from worlds import CONFIG, fake_world

from provisioner import warm as warm_module
from provisioner.cli.report import read_history, report_data
from provisioner.cli.status import snapshot
from provisioner.config import Settings, load
from provisioner.cycle.warmth import WarmTargets
from provisioner.idle_outs import StartLearned, idle_outs_ended_since, warm_minutes
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.metrics.observer import MetricsObserver
from provisioner.model import JobState, LaunchState, Pool, QueueCounts, RemoteJob, Worker
from provisioner.simulate.metrics import measure
from provisioner.simulate.report import checks
from provisioner.simulate.runner import run_provisioner
from provisioner.simulate.scenario import load_scenario, settings_table
from provisioner.warm import Arrivals, is_idle_out, warm_target


def test_arrivals_counted_from_pending_and_claims_over_the_window():
    a = Arrivals(window=600)
    a.observe("q", 0, QueueCounts(0, 0))
    assert a.counted("q") is None and a.likely_rate("q") is None  # one reading is no rate
    a.observe("q", 60, QueueCounts(2, 0))  # 2 arrived
    a.observe("q", 120, QueueCounts(1, 3), claims=3)  # 2 more: pending fell by 1 while 3 were claimed
    assert a.counted("q") == (4, 300)  # over half the window at least: 120 s of readings is not enough
    a.observe("q", 180, QueueCounts(0, 1), claims=0)  # a claim not seen yet, tasks done: never negative
    a.observe("q", 420, QueueCounts(0, 1))
    assert a.counted("q") == (4, 420)
    a.observe("q", 440, None)  # unknown: the interval around it is left out, not guessed
    a.observe("q", 500, QueueCounts(50, 0))
    assert a.counted("q") == (4, 420)
    a.observe("q", 560, QueueCounts(50, 0))
    a.observe("q", 1400, QueueCounts(50, 0))  # the window moved on: only quiet intervals are left
    assert a.counted("q") == (0, 840) and a.likely_rate("q") == 0


def test_warm_target_fixed_auto_and_capped():
    pool = Pool("p", "q", "s", "d", "l", warm=3)
    assert warm_target(pool, None, 300, 1.5) == 3
    auto = Pool("p", "q", "s", "d", "l", warm="auto")
    assert warm_target(auto, None, 300, 1.5) == 0  # no rate yet: demand only
    assert warm_target(auto, 100 / 3600, 300, 1.5) == 13  # 100 an hour x 5 min x 1.5 = 12.5
    assert warm_target(auto, 3 / 3600, 210, 1.5) == 0  # 0.26 of a task: a warm worker would mostly idle out
    assert warm_target(Pool("p", "q", "s", "d", "l", warm="auto", warm_max=4), 100 / 3600, 300, 1.5) == 4


def test_config_refuses_a_warm_that_is_not_a_number_or_auto(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.replace('udids = ["A", "B", "C"]', 'udids = ["A", "B", "C"]\nwarm = "lots"\nidle_timeout = 0'))
    _, problems = load(path)
    assert {p.key for p in problems} == {"pools.p.warm", "pools.p.idle_timeout"}


def make(tmp_path: Path, warm: str = "1", idle_timeout: int = 1200):
    config, fake, clock, runtime = fake_world(tmp_path, CONFIG.replace(
        'udids = ["A", "B", "C"]', f'udids = ["A", "B", "C"]\nwarm = {warm}\nidle_timeout = {idle_timeout}'))
    observer = MetricsObserver("127.0.0.1", 0)
    p = Provisioner(config, runtime, Ledger(tmp_path / "ledger.sqlite3"), clock, hook=observer, inline=True)
    return p, fake, clock, observer


def test_a_warm_launch_is_recorded_covers_until_its_idle_timeout_and_idles_out(tmp_path):
    p, fake, clock, observer = make(tmp_path)
    try:
        report = p.cycle()
        assert [(x.pool, x.kind) for x in report.plan.launches] == [("p", "warm")]  # nothing pending: 1 warm
        (launch,) = p.ledger.in_flight()
        assert launch.kind == "warm" and p.ledger.get(launch.id).kind == "warm"
        fake.job("job-0", JobState.RUNNING)
        for _ in range(40):  # 1200 s: past max_startup_seconds (900), within 200 + 1200 + 30: still the one
            clock.advance(30)
            assert p.cycle().plan.launches == ()
        clock.advance(60)
        fake.job_list = [RemoteJob("job-0", "p", launch.udid, JobState.ENDED, 0.0, clock.now(), "completed")]
        report = p.cycle()
        assert [x.kind for x in report.plan.launches] == ["warm"]  # the next warm worker
        ended = p.ledger.get(launch.id)
        assert ended.state is LaunchState.ENDED and is_idle_out(ended)
        assert idle_outs_ended_since(p.ledger, clock.now() - 3600) == {"p": 1}
        assert warm_minutes(p.ledger, 0) == {"p": pytest.approx((clock.now() - launch.submitted_at) / 60)}
        assert 'provisioner_idle_outs_total{pool="p"} 1.0' in observer.text()
        assert 'provisioner_pool_warm{pool="p"} 0.0' in observer.text()  # the new one is not started yet
        assert 'provisioner_pool_warm_target{pool="p"} 1.0' in observer.text()
        snap = snapshot(p.config, p.runtime, p.ledger, clock)
        row = next(r for r in snap["pools"] if r["pool"] == "p")
        assert row["idle_outs_last_hour"] == 1 and row["warm_target"] == 1
        data = report_data(["p", "s"], read_history(p.ledger, [], 0), [], {}, ("failed",), 0, clock.now(), [])
        perf = data["pools"][0]
        assert (perf["idle_outs"], perf["completed"], perf["wasted"]) == (1, 0, 0)  # not completed, not wasted
    finally:
        observer.close()


def test_a_warm_worker_that_claims_is_no_idle_out_and_a_pending_task_goes_first(tmp_path):
    p, fake, clock, observer = make(tmp_path, warm="2")
    try:
        fake.pending["proj/p"] = 1
        report = p.cycle()
        assert sorted(x.kind for x in report.plan.launches) == ["demand", "warm", "warm"]
        first = next(la for la in p.ledger.in_flight() if la.job_id == "job-1")  # a warm one
        fake.job("job-1", JobState.RUNNING)
        fake.workers_of["proj/p"] = [Worker(first.udid, latest_task="t/0", first_claim=clock.now() + 10)]
        clock.advance(30)
        fake.job_list = [RemoteJob("job-1", "p", first.udid, JobState.ENDED, 0.0, clock.now(), "completed")]
        p.cycle()  # the claim is seen before the ending in the same cycle
        ended = p.ledger.get(first.id)
        assert ended.claimed_at is not None and not is_idle_out(ended)
    finally:
        observer.close()


def test_a_few_arrivals_by_chance_keep_no_worker_waiting_a_steady_stream_does():
    def window_with(arrivals: int) -> Arrivals:
        a = Arrivals(window=1800)
        a.observe("q", 0, QueueCounts(0, 0))
        a.observe("q", 1800, QueueCounts(0, 0), claims=arrivals)  # arrived and were claimed within the window
        return a

    sparse = Pool("p", "q", "s", "d", "l", warm="auto")
    # 3 tasks an hour: 1.5 expected in the window; 5 is chance (the plain rate would keep a worker waiting)
    assert window_with(5).counted("q") == (5, 1800)
    assert warm_target(sparse, 5 / 1800, 210, 1.5) == 1
    assert warm_target(sparse, window_with(5).likely_rate("q"), 210, 1.5) == 0
    # 100 an hour: about the same target either way (50 arrivals less 7)
    steady = window_with(50)
    assert steady.likely_rate("q") == pytest.approx((50 - 50 ** 0.5) / 1800)
    assert warm_target(sparse, 50 / 1800, 300, 1.5) == 13
    assert warm_target(sparse, steady.likely_rate("q"), 300, 1.5) == 11
    assert Arrivals(window=1800).likely_rate("q") is None  # no reading: no rate


def _auto(timeout: float | None = None) -> Pool:
    return Pool("p", "q", "s", "d", "l", warm="auto", idle_timeout=timeout)


rates = st.floats(min_value=0.0, max_value=2.0, allow_nan=False)  # tasks a second
seconds = st.floats(min_value=1.0, max_value=7200.0, allow_nan=False)


@given(rate=rates, claim=seconds, timeout=seconds, start=st.floats(min_value=0.0, max_value=7200.0),
       safety=st.floats(min_value=1.0, max_value=10.0))
def test_auto_keeps_no_more_waiting_than_arrivals_use_before_the_idle_timeout_and_serves_demand_first(
        rate, claim, timeout, start, safety):
    """Beyond the expected demand over one launch-to-claim time (``round(r x L)``, served first, never cut), the
    workers kept waiting are never more than ``r x (idle_timeout - start)``; and never more than the safety
    factor asks for."""
    got = warm_target(_auto(timeout), rate, claim, safety, start)
    expected = math.floor(rate * claim + 0.5 + 1e-9)
    assert got >= expected  # demand first: the cut never takes from the expected demand
    assert got - expected <= rate * max(0.0, timeout - start) + 1e-6  # never more waiting than can be used
    assert got <= math.floor(rate * claim * safety + 0.5 + 1e-9)


def test_the_idle_timeout_cuts_the_margin_where_launch_to_claim_is_long_against_it():
    # 72 an hour, 5 min to claim: 6 expected, 1.5 x 6 = 9 wanted; a 600 s timeout leaves room for 12 waiting
    assert warm_target(_auto(600), 0.02, 300, 1.5) == 9
    # a 100 s timeout: a waiting worker sees 2 arrivals before it idles out, so 6 + 2, not 9
    assert warm_target(_auto(100), 0.02, 300, 1.5) == 8
    # a timeout the worker's start uses up: the expected demand only
    assert warm_target(_auto(100), 0.02, 300, 1.5, start_seconds=100) == 6
    assert warm_target(_auto(None), 0.02, 300, 1.5) == 9  # no idle_timeout: production's 600 s


def _shipped(name: str, duration: float):
    root = Path(__file__).resolve().parents[1] / "scenarios"
    sc = load_scenario(name, (root,))
    return type(sc)(**{**sc.__dict__, "duration": duration}), settings_table(root / "production.toml")


@pytest.mark.parametrize("name, duration", [("busy", 5400), ("busy-short-idle", 3600)])
def test_the_busy_scenarios_warm_workers_pay_for_themselves(name, duration):
    """The shipped busy scenarios (a pool about 80% busy, 3.5 min to claim; a 600 s idle timeout, and a 60 s
    one), shortened and seeded: with auto, idle-outs stay under 10% of launches and the median wait under a
    third of warm = 0's."""
    sc, settings = _shipped(name, duration)
    cold = measure(run_provisioner(settings, sc, seed=3, warm=0))
    run = run_provisioner(settings, sc, seed=3, warm="auto")
    warm = measure(run)
    assert warm.launches > 60 and warm.idle_outs < 0.1 * warm.launches
    assert cold.wait_p50 >= 210 and warm.wait_p50 < cold.wait_p50 / 3
    found = checks(warm, None, run.settings, sc)
    assert [c.target for c in found] == ["warm-pays", "warm-pays"] and all(c.ok for c in found), found


def test_without_the_idle_timeout_cut_the_short_idle_pool_idles_out_too_often(monkeypatch):
    """What the cut buys: sized by the safety factor alone (``round(k x r x L)``), the pool with a 60 s idle
    timeout keeps more workers waiting than arrivals use in time, and over 10% of its launches idle out."""
    sc, settings = _shipped("busy-short-idle", 3600)
    monkeypatch.setattr(warm_module, "auto_target", lambda rate, claim, safety, timeout, start:
                        math.floor(rate * claim * safety + 0.5 + 1e-9) if rate > 0 else 0)
    uncut = measure(run_provisioner(settings, sc, seed=3, warm="auto"))
    assert uncut.idle_outs >= 0.1 * uncut.launches


def _ended(ledger: Ledger, pool: str, sent: float, ended: float, kind: str = "warm", outcome: str = "completed",
           claimed: float | None = None) -> None:
    launch = ledger.add(pool, "A", sent - 5, kind=kind)
    ledger.mark(launch.id, sent_at=sent)
    if claimed is not None:
        ledger.mark(launch.id, claimed_at=claimed)
    ledger.update(launch.id, LaunchState.ENDED, ended, outcome=outcome)


def test_the_start_an_idle_timeout_runs_through_is_learned_from_the_pools_idle_outs(tmp_path):
    """s = L + T - (launch to end of its idle-outs), within [0, T]: a worker whose idle clock ran during its
    start lived less than L + T; one whose clock started at its first claim lived longer (post, a cycle)."""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        pool = Pool("p", "q", "s", "d", "l", warm="auto", idle_timeout=600)
        learned = StartLearned(ledger, refresh=600)
        assert learned.start_seconds(pool, 210, 10_000) == 0.0  # no idle-out yet: generic-worker's own clock
        for sent in (1000, 2000, 3000):
            _ended(ledger, "p", sent, sent + 700)  # idled out 700 s after launch: 110 s of the start counted
        _ended(ledger, "p", 4000, 4010, kind="demand")  # a demand launch, a failure, a claimed warm one: not
        _ended(ledger, "p", 4000, 4010, outcome="failed")  # idle-outs, not counted
        _ended(ledger, "p", 4000, 4010, claimed=4005)
        _ended(ledger, "other", 4000, 4900)  # another pool's
        assert learned.start_seconds(pool, 210, 10_000) == 0.0  # read at most every 600 s
        assert learned.start_seconds(pool, 210, 10_600) == 110.0
        assert learned.start_seconds(Pool("other", "q2", "s", "d", "l", warm="auto"), 210, 10_600) == 0.0
        assert learned.start_seconds(pool, 30, 10_600) == 0.0  # lived longer than L + T: never below 0
        assert learned.start_seconds(pool, 900, 10_600) == 600.0  # never above T
        assert StartLearned(None).start_seconds(pool, 210, 0) == 0.0  # no ledger (a dry run)
        # the target follows: 180 an hour, 210 s to claim, safety 4: 11 expected and at most 0.05 x (600 - 110)
        # = 24 waiting (not 42 - 11), where a clock started at the first claim would leave room for 30
        assert warm_target(pool, 0.05, 210, 4, learned.start_seconds(pool, 210, 10_600)) == 11 + 24
        assert warm_target(pool, 0.05, 210, 4) == 11 + 30
    finally:
        ledger.close()


def test_the_learned_start_is_read_again_on_the_monotonic_clock_after_a_wall_step_back(tmp_path):
    """Read every 600 s of the monotonic clock: a wall clock stepped back an hour neither freezes the figure (a
    negative wall age) nor keeps the warm targets from seeing it; the ledger's last day still reaches back from
    the wall time."""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        pool = Pool("p", "q", "s", "d", "l", warm="auto", idle_timeout=600)
        warmth = WarmTargets(Settings(state_dir=tmp_path), {"p": pool}, lambda name, now, mono: 210.0, ledger)
        assert warmth.start.start_seconds(pool, 210, 10_000, mono=50.0) == 0.0  # read: no idle-out yet
        for sent in (1000, 2000, 3000):
            _ended(ledger, "p", sent, sent + 700)
        assert warmth.start.start_seconds(pool, 210, 6_500, mono=500.0) == 0.0  # within 600 s: not read again
        warmth.targets({"q": QueueCounts(0, 0)}, Counter(), 6_500.0, 650.0)  # wall 3500 s back, 600 s on
        for sent in (4000, 4100, 4200):
            _ended(ledger, "p", sent, sent + 650)  # seen by the next reading only: 600 s after the targets' one
        assert warmth.start.start_seconds(pool, 210, 6_550, mono=700.0) == 110.0
        assert warmth.start.start_seconds(pool, 210, 6_550, mono=1_250.0) == 135.0  # median life 675 s
    finally:
        ledger.close()
