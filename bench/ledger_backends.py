"""A cycle against the SQLite ledger and against the PostgreSQL ledger, at the same fleet size.

    .venv/bin/python bench/ledger_backends.py [--runs N] [--url postgresql://...]

The fleet is scale_grid's in memory (5,000 phones, 200 pools, 2,000 launches in flight). Per backend: a cycle that
launches nothing (observe, reconcile against the ledger, plan: the reads and the reconciliation's one
transaction), and a cycle that launches (each launch written, marked submitting and started: three fenced writes
with PostgreSQL, plus a read of the job id), its time per launch. Without ``--url`` a throwaway PostgreSQL server
is started (tests/pgserver.py: initdb and pg_ctl on PATH or in /usr/lib/postgresql/*/bin), on loopback.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from loguru import logger

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from scale_grid import Fleet, config_for, fill  # noqa: E402

from provisioner.clock import VirtualClock  # noqa: E402
from provisioner.config import load  # noqa: E402
from provisioner.ledger import Ledger, PostgreSQL, SQLite  # noqa: E402
from provisioner.ledger.leadership import Lease  # noqa: E402
from provisioner.loop import Provisioner  # noqa: E402
from provisioner.plugins import Runtime  # noqa: E402

PHONES, POOLS, FLYING = 5_000, 200, 2_000


def run(dialect, tmp: Path, runs: int, url: str = "") -> dict[str, float]:
    config, problems = load(config_for(tmp, POOLS))
    assert not problems
    fleet = Fleet(PHONES, POOLS)
    clock = VirtualClock()
    lease = None
    if url:
        lease = Lease(PostgreSQL(url), config.settings.job_tag, config.settings.interval)
        ledger = Ledger(dialect, follow=True)
    else:
        ledger = Ledger(dialect)
    fill(ledger, fleet, FLYING, clock.now())
    runtime = Runtime(config.pools, {role: {"mem": fleet} for role in ("queue_source", "device_provider", "launcher")})
    p = Provisioner(config, runtime, ledger, clock, inline=True, lease=lease)
    act = p.act
    p.act = lambda the_plan, workers, now: None
    p.cycle()  # the first: takes over (PostgreSQL), warms up
    cycles = []
    for _ in range(runs):
        t = time.perf_counter()
        p.cycle()
        cycles.append(time.perf_counter() - t)
    p.act = act
    launching, launched = [], 0
    for _ in range(max(1, runs // 3)):
        clock.advance(30)
        t = time.perf_counter()
        report = p.cycle()
        launching.append((time.perf_counter() - t) / max(1, len(report.plan.launches)))
        launched += len(report.plan.launches)
    if lease is not None:
        lease.close()
    ledger.close()
    return {"cycle": statistics.median(cycles) * 1000, "per_launch": statistics.median(launching) * 1000,
            "launched": launched}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--url", default="", help="a PostgreSQL database to use (it gets the ledger's tables)")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    server = None
    url = args.url
    if not url:
        from pgserver import Server

        server = Server()
        url = server.database()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = {"sqlite": run(SQLite(Path(tmp) / "ledger.sqlite3"), Path(tmp), args.runs)}
        with tempfile.TemporaryDirectory() as tmp:
            rows["postgresql"] = run(PostgreSQL(url), Path(tmp), args.runs, url)
    finally:
        if server is not None:
            server.close()
    print(f"fleet: {PHONES:,} phones, {POOLS} pools, {FLYING:,} launches in flight; medians of {args.runs} runs")
    print("| ledger | cycle, no launch | per launch (written, submitting, started) | launches measured |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['cycle']:.1f} ms | {row['per_launch']:.2f} ms | {row['launched']} |")
    print(f"postgresql / sqlite: cycle x{rows['postgresql']['cycle'] / rows['sqlite']['cycle']:.2f}, "
          f"per launch x{rows['postgresql']['per_launch'] / rows['sqlite']['per_launch']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
