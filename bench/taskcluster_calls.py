"""Remote calls per cycle of the taskcluster queue source for N pools: batch counts against one call per queue.

Runs the plugin against a local Taskcluster stub (``provisioner_taskcluster.stub.StubDeployment``, an
http.server on 127.0.0.1 that counts the requests it gets), for three deployments/configurations:

- batch:          the deployment has taskQueueCountsBatch, the plugin uses it (default config);
- 404 fallback:   an older deployment answers 404 to the batch call; the plugin remembers and asks per queue;
- batch = false:  the plugin is told to ask one queue at a time.

Each cycle is what the host does: counts(queues) then quarantined(queues), 30 s apart on a virtual clock (so the
quarantine lists are read again every ``quarantine_refresh``, 120 s by default). Prints calls per cycle on
average and the median milliseconds of a cycle.

    .venv/bin/python bench/taskcluster_calls.py [--pools 50] [--cycles 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from loguru import logger

from provisioner import PluginContext
from provisioner.clock import VirtualClock
from provisioner_taskcluster.source import TaskclusterQueues
from provisioner_taskcluster.stub import StubDeployment

WORKERS = [{"workerGroup": "lambda", "workerId": "R5CW5678DEF", "quarantineUntil": "3025-06-09T22:05:00.000Z"}]


def run(queues: list[str], cycles: int, has_batch: bool, batch: bool, interval: float = 30.0) -> dict[str, float]:
    """Calls per cycle (mean) for counts and for quarantine, the median milliseconds, the first cycle's count calls."""
    per_cycle: list[tuple[int, int, float]] = []
    clock = VirtualClock()
    with StubDeployment(workers=WORKERS, has_batch=has_batch) as deployment:
        source = TaskclusterQueues.from_options({"root_url": deployment.root_url, "batch": batch},
                                                PluginContext(clock=clock, environ={}))
        for _ in range(cycles):
            deployment.calls.clear()
            start = time.perf_counter()
            known = source.counts(queues)
            quarantined = source.quarantined(queues)
            elapsed = (time.perf_counter() - start) * 1000
            assert None not in known.values() and None not in quarantined.values()
            calls = deployment.calls
            per_cycle.append((calls["taskQueueCounts"] + calls["taskQueueCountsBatch"], calls["listWorkers"], elapsed))
            clock.advance(interval)
        source.close()
    return {
        "counts": statistics.mean(c for c, _, _ in per_cycle),
        "first": per_cycle[0][0],
        "quarantine": statistics.mean(q for _, q, _ in per_cycle),
        "ms": statistics.median(ms for _, _, ms in per_cycle),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args()
    logger.remove()  # the plugin's "no batch endpoint (404)" line is expected here
    queues = [f"proj-autophone/gecko-t-lambda-pool-{i:02d}" for i in range(args.pools)]
    rows = {
        "batch": run(queues, args.cycles, has_batch=True, batch=True),
        "404 fallback": run(queues, args.cycles, has_batch=False, batch=True),
        "batch = false": run(queues, args.cycles, has_batch=True, batch=False),
    }
    print(f"{args.pools} pools, {args.cycles} cycles 30 s apart: calls per cycle (mean), ms per cycle (median)")
    print(f"{'mode':<14} {'count calls':>11} {'1st cycle':>9} {'listWorkers':>11} {'all calls':>9} {'ms':>8}")
    for mode, row in rows.items():
        print(f"{mode:<14} {row['counts']:>11.1f} {row['first']:>9.0f} {row['quarantine']:>11.1f} "
              f"{row['counts'] + row['quarantine']:>9.1f} {row['ms']:>8.1f}")
    batch, single = rows["batch"], rows["batch = false"]
    print(f"count calls, one per queue / batch: {single['counts'] / batch['counts']:.0f}x; "
          f"all calls: {(single['counts'] + single['quarantine']) / (batch['counts'] + batch['quarantine']):.2f}x; "
          f"time: {single['ms'] / batch['ms']:.2f}x")


if __name__ == "__main__":
    main()
