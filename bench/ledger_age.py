"""Is the daemon as fast on day 300 as on day 1? One cycle, `status` and `report --since 30d` against ledgers of
growing age, built through the ledger's own API.

    .venv/bin/python bench/ledger_age.py [--rows 1000000] [--runs N]

Rows: every ledger holds the last 6 hours at production's rate (600 launches an hour) and 1,000 launches in
flight; ROWS more are spread over the 30 days before (5,000 phones, 200 pools, a tenth failed submissions, the
rest ended jobs). The cycle is a whole ``Provisioner.cycle`` against in-memory roles (see
scale_grid.py); `status` and `report` run as the real commands on the simulated fleet, in a child process whose
peak RSS is read. Prints medians and the targets: a cycle at the largest ledger within 10 % of the empty one,
`status` under 0.5 s, `report --since 30d` under 2 s and 200 MB.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_grid import Fleet, config_for  # noqa: E402

from provisioner.clock import VirtualClock  # noqa: E402
from provisioner.config import load  # noqa: E402
from provisioner.ledger import Ledger  # noqa: E402
from provisioner.loop import Provisioner  # noqa: E402
from provisioner.model import LaunchState  # noqa: E402
from provisioner.plugins import Runtime  # noqa: E402

DAY = 86400.0
PHONES, POOLS = 5_000, 200
RATE, RECENT_HOURS = 600, 6  # launches an hour, and hours of them in every ledger
CHILD = """
import resource, runpy, sys, time
t = time.perf_counter()
sys.argv = ["provisioner", *sys.argv[1:]]
try:
    runpy.run_module("provisioner", run_name="__main__")
except SystemExit:
    pass
sys.stderr.write(f"BENCH {time.perf_counter() - t:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
"""


def build(path: Path, rows: int, now: float, seed: int = 0) -> None:
    """The last ``RECENT_HOURS`` at production's rate (600 launches an hour), then ``rows`` older launches back to
    30 days ago: ledgers of every size have the same recent past, so only their age differs. Through the
    ledger's API, 10,000 to a transaction. Each phone serves one pool."""
    rng = random.Random(seed)
    ledger = Ledger(path)
    recent = int(RECENT_HOURS * RATE)
    times = [now - RECENT_HOURS * 3600 + i * 3600 / RATE for i in range(recent)]
    old_span = 30 * DAY - RECENT_HOURS * 3600
    times += [now - 30 * DAY + i * old_span / max(rows, 1) for i in range(rows)]
    for start in range(0, len(times), 10_000):
        with ledger.batch():
            for i in range(start, min(len(times), start + 10_000)):
                at = times[i]
                phone = rng.randrange(PHONES)
                launch = ledger.add(f"pool-{phone % POOLS:04d}", f"P{phone:06d}", at)
                if i % 10 == 0:
                    ledger.update(launch.id, LaunchState.FAILED, at + 5, detail="hyperexecute exited with status 1")
                    continue
                ledger.update(launch.id, LaunchState.RUNNING, at + 60, job_id=f"J{i}")
                ledger.mark(launch.id, claimed_at=at + 210)
                ledger.update(launch.id, LaunchState.ENDED, at + 900, outcome="completed" if i % 7 else "failed")
    with ledger.batch():
        for i in range(1_000):
            launch = ledger.add(f"pool-{i % POOLS:04d}", f"P{i:06d}", now - 60)
            ledger.update(launch.id, LaunchState.STARTING, now - 55, job_id=f"F{i}")
    ledger.close()


def cycle_ms(path: Path, tmp: Path, runs: int, now: float) -> float:
    config, problems = load(config_for(tmp, POOLS))
    assert not problems
    fleet = Fleet(PHONES, POOLS)
    runtime = Runtime(config.pools, {role: {"mem": fleet} for role in ("queue_source", "device_provider", "launcher")})
    clock = VirtualClock(now)
    p = Provisioner(config, runtime, Ledger(path), clock, inline=True)
    p.act = lambda the_plan, workers, now: None  # the same plan every time
    p._pruned_at = now  # retention is hourly work, measured on its own
    took = []
    for _ in range(runs):
        t = time.perf_counter()
        p.cycle()
        took.append(time.perf_counter() - t)
        clock.advance(30)
    p.ledger.close()
    return statistics.median(took) * 1000


def command(state: Path, *args: str) -> tuple[float, float]:
    """Run ``provisioner ARGS`` on the simulated fleet with this ledger: (seconds, peak RSS in MB)."""
    config = state.parent / "sim.toml"
    config.write_text(f'[provisioner]\nstate_dir = "{state}"\n[defaults]\nqueue_source = "sim"\ndevice_provider = "sim"\n'
                      f'launcher = "sim"\n[pools.pool-0000]\nqueue = "proj/q0000"\nselector = {{ model = "A55" }}\n'
                      f'[plugins.sim]\nphones = 50\nmodels = ["A55"]\n')
    done = subprocess.run([sys.executable, "-c", CHILD, *args, "-c", str(config)], capture_output=True, text=True,
                          env={"PROVISIONER_PLUGINS": "none", "PATH": "/usr/bin:/bin"}, timeout=600)
    line = [x for x in done.stderr.splitlines() if x.startswith("BENCH ")][-1].split()
    return float(line[1]), int(line[2]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    now = time.time()
    sizes = [0, 100_000, args.rows] if args.rows > 100_000 else [0, args.rows]
    results = {}
    print("| ledger rows | build | one cycle (median) | status | report --since 30d | report peak RSS |")
    print("|---|---|---|---|---|---|")
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state"
            state.mkdir()
            t = time.perf_counter()
            build(state / "ledger.sqlite3", rows, now)
            built = time.perf_counter() - t
            cycle = cycle_ms(state / "ledger.sqlite3", Path(tmp), args.runs, now)
            status, _ = command(state, "status")
            report, rss = command(state, "report", "--since", "30d")
            results[rows] = (cycle, status, report, rss)
            print(f"| {rows:,} | {built:.0f} s | {cycle:.1f} ms | {status:.2f} s | {report:.2f} s | {rss:.0f} MB |")
    base, big = results[sizes[0]], results[sizes[-1]]
    checks = [
        (f"one cycle at {sizes[-1]:,} rows within 10 % of the empty ledger", big[0] <= base[0] * 1.10,
         f"{big[0]:.1f} ms vs {base[0]:.1f} ms ({big[0] / base[0]:.2f}x)"),
        ("status under 0.5 s", big[1] < 0.5, f"{big[1]:.2f} s"),
        ("report --since 30d under 2 s", big[2] < 2.0, f"{big[2]:.2f} s"),
        ("report --since 30d under 200 MB", big[3] < 200, f"{big[3]:.0f} MB"),
    ]
    for name, ok, figure in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {figure}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
