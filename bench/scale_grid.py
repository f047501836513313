"""How a cycle scales with phones, pools and launches in flight, and how long a restart takes to its first plan.

    .venv/bin/python bench/scale_grid.py [--runs N]

Each row: the planner alone (``plan()``), and a whole cycle of ``Provisioner`` (observe from in-memory roles,
reconcile against a real SQLite ledger holding the launches in flight, plan, log at WARNING): medians of N runs,
with how many launches were planned (a bench that plans nothing measures nothing). Then a restart: open a ledger
with 20,000 launches in flight, build the loop, run its first cycle. Prints medians and the targets' ratios.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from loguru import logger

from provisioner.clock import VirtualClock
from provisioner.config import load
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.model import JobState, LaunchResult, LaunchState, Limits, Phone, PhoneState, QueueCounts, RemoteJob
from provisioner.planner import Observation, plan
from provisioner.plugins import Runtime
from provisioner.runtime import settle_collector

GRID = ((5_000, 200, 2_000), (50_000, 2_000, 20_000))
TARGETS = {"cycle": 100.0, "plan": 50.0, "restart": 1000.0}  # ms, at the largest row


class Fleet:
    """Queue source, device provider and launcher in memory: every pool has pending tasks and idle phones."""

    def __init__(self, phones: int, pools: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.models = [f"Model-{i:04d}" for i in range(pools)]
        self.phone_list = [
            Phone(f"P{i:06d}", self.models[i % pools], "14", PhoneState.IDLE if rng.random() < 0.6 else PhoneState.BUSY)
            for i in range(phones)
        ]
        self.queues = [f"proj/q{i:04d}" for i in range(pools)]
        self.pending = {q: rng.randrange(0, 40) for q in self.queues}
        self.job_list: list[RemoteJob] = []

    def counts(self, queues):
        return {q: QueueCounts(self.pending[q], 3) for q in queues}

    def workers(self, queues):
        return {q: [] for q in queues}

    def phones(self):
        return self.phone_list

    def jobs(self, since):
        return self.job_list

    def refresh(self) -> None:
        """New objects with new strings for the next cycle's lists, as a provider parsing its answer hands over
        (reused objects would carry their strings' hashes from the last cycle). Made outside the timed cycle:
        parsing is the plugin's cost, not the loop's."""
        def new(text: str) -> str:
            return "".join(list(text))
        self.phone_list = [Phone(new(p.udid), new(p.model), new(p.os_version), p.state) for p in self.phone_list]
        self.job_list = [RemoteJob(new(j.job_id), new(j.pool), new(j.udid), j.state, j.created_at)
                         for j in self.job_list]

    def launch(self, request):
        return LaunchResult(True, job_id=f"new-{request.launch_id}")


def config_for(tmp: Path, pools: int) -> Path:
    path = tmp / "c.toml"
    lines = ["[provisioner]", "interval = 30", "launch_interval = 0", "max_launches_per_cycle = 1000",
             "max_starting = 100000", "seed = 1", "[defaults]", 'queue_source = "mem"', 'device_provider = "mem"',
             'launcher = "mem"']
    for i in range(pools):
        lines += [f"[pools.pool-{i:04d}]", f'queue = "proj/q{i:04d}"', f'selector = {{ model = "Model-{i:04d}" }}',
                  f"priority = {i % 3}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def fill(ledger: Ledger, fleet: Fleet, n: int, now: float) -> None:
    """``n`` launches in flight on busy phones, half starting, half running, and their jobs in the provider's list."""
    busy = [p for p in fleet.phone_list if p.state is PhoneState.BUSY]
    names = {model: f"pool-{i:04d}" for i, model in enumerate(fleet.models)}  # one object a pool, as the loop's
    with ledger.batch():
        for i in range(n):
            phone = busy[i % len(busy)]
            pool = names[phone.model]
            launch = ledger.add(pool, phone.udid, now - 60 - i % 600)
            state = LaunchState.RUNNING if i % 2 else LaunchState.STARTING
            ledger.update(launch.id, state, now - 30, job_id=f"job-{i}")
            fleet.job_list.append(RemoteJob(f"job-{i}", pool, phone.udid,
                                            JobState.RUNNING if i % 2 else JobState.STARTING, now - 60))


def make(tmp: Path, phones: int, pools: int, flying: int) -> tuple[Provisioner, Fleet, Ledger]:
    config, problems = load(config_for(tmp, pools))
    assert not problems, problems[:3]
    fleet = Fleet(phones, pools)
    clock = VirtualClock()
    ledger = Ledger(tmp / "ledger.sqlite3")
    fill(ledger, fleet, flying, clock.now())
    runtime = Runtime(config.pools, {role: {"mem": fleet} for role in ("queue_source", "device_provider", "launcher")})
    return Provisioner(config, runtime, ledger, clock, inline=True), fleet, ledger


def bench_row(phones: int, pools: int, flying: int, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        p, fleet, ledger = make(Path(tmp), phones, pools, flying)
        now = p.clock.now()
        # the planner alone, on this cycle's observation
        obs, _, jobs, workers = p.observe(now)
        in_flight = p.reconcile(jobs, workers, now)
        obs = Observation(obs.counts, obs.quarantined, obs.phones, in_flight, {}, ledger.last_used())
        limits = Limits(1000, 100_000, 900.0)
        plans, planned = [], 0
        for i in range(runs):
            t = time.perf_counter()
            the_plan = plan(tuple(p.pools.values()), obs, limits, now, seed=i)
            plans.append(time.perf_counter() - t)
            planned = len(the_plan.launches)
        # whole cycles; the launcher is replaced by a no-op so that the fleet (and the plan) stays the same
        p.act = lambda the_plan, workers, now: None
        cycles = []
        for _ in range(runs):
            fleet.refresh()
            t = time.perf_counter()
            p.cycle()
            cycles.append(time.perf_counter() - t)
        ledger.close()
    return {"plan": statistics.median(plans) * 1000, "planned": planned, "cycle": statistics.median(cycles) * 1000}


def bench_restart(flying: int = 20_000, phones: int = 50_000, pools: int = 2_000) -> float:
    """Open a ledger holding ``flying`` launches in flight, build the loop, run the first cycle: ms."""
    with tempfile.TemporaryDirectory() as tmp:
        p, fleet, ledger = make(Path(tmp), phones, pools, flying)
        ledger.close()
        config, runtime, clock = p.config, p.runtime, p.clock
        t = time.perf_counter()
        again = Provisioner(config, runtime, Ledger(Path(tmp) / "ledger.sqlite3"), clock, inline=True)
        again.act = lambda the_plan, workers, now: None
        report = again.cycle()
        took = time.perf_counter() - t
        assert report.plan.launches, "the restart's first cycle planned nothing"
        again.ledger.close()
    return took * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    settle_collector()  # as `provisioner run` does (the bench calls cycle() itself)
    print("| phones | pools | in flight | plan (median) | launches planned | whole cycle (median) |")
    print("|---|---|---|---|---|---|")
    last: dict[str, float] = {}
    for phones, pools, flying in GRID:
        last = bench_row(phones, pools, flying, args.runs)
        print(f"| {phones:,} | {pools:,} | {flying:,} | {last['plan']:.1f} ms | {last['planned']:.0f} | "
              f"{last['cycle']:.1f} ms |")
    restart = bench_restart()
    print(f"restart with 20,000 launches in flight (50,000 phones, 2,000 pools), to the first plan: {restart:.0f} ms")
    failed = 0
    for name, value in (("cycle", last["cycle"]), ("plan", last["plan"]), ("restart", restart)):
        ok = value < TARGETS[name]
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {name} at the largest size under {TARGETS[name]:.0f} ms: {value:.1f} ms "
              f"({TARGETS[name] / value:.1f}x margin)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
