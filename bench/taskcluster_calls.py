"""Remote calls per cycle of the taskcluster queue source for N pools: batch counts against one call per queue.

Runs the plugin against a local Taskcluster stub (``provisioner_taskcluster.stub.StubDeployment``, an
http.server on 127.0.0.1 that counts the requests it gets), for three deployments/configurations:

- batch:          the deployment has taskQueueCountsBatch, the plugin uses it (default config);
- 404 fallback:   an older deployment answers 404 to the batch call; the plugin remembers and asks per queue;
- batch = false:  the plugin is told to ask one queue at a time.

Each cycle is what the host does: counts(queues) then workers(queues), 30 s apart on a virtual clock. The
queue's listWorkers is read for every queue every cycle (claims must be seen within a cycle; it has no batch
form), ``ceil(workers / page_size)`` pages each. Prints calls per cycle on average and the median
milliseconds of a cycle.

    .venv/bin/python bench/taskcluster_calls.py [--pools 50] [--cycles 20] [--workers 3] [--page-size 1000]
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



def workers(count: int) -> list[dict[str, object]]:
    """``count`` phones of a pool as the queue records them; the first one quarantined."""
    return [{"workerGroup": "lambda", "workerId": f"R5CW{i:07d}", "firstClaim": "2025-03-02T10:15:00.000Z",
             "latestTask": {"taskId": "HDbBAeGjSVKN0Dwai4QaOA", "runId": i % 3},
             "quarantineUntil": "3025-06-09T22:05:00.000Z" if i == 0 else "2015-06-10T08:00:01.000Z"}
            for i in range(count)]


def run(queues: list[str], cycles: int, has_batch: bool, batch: bool, records: list[dict[str, object]],
        page_size: int, interval: float = 30.0) -> dict[str, float]:
    """Calls per cycle (mean) for counts and for workers, the median milliseconds, the first cycle's count calls."""
    per_cycle: list[tuple[int, int, float]] = []
    clock = VirtualClock()
    with StubDeployment(workers=records, has_batch=has_batch, page_size=page_size) as deployment:
        source = TaskclusterQueues.from_options({"root_url": deployment.root_url, "batch": batch},
                                                PluginContext(clock=clock, environ={}))
        for _ in range(cycles):
            deployment.calls.clear()
            start = time.perf_counter()
            known = source.counts(queues)
            found = source.workers(queues)
            elapsed = (time.perf_counter() - start) * 1000
            assert None not in known.values() and all(len(w or ()) == len(records) for w in found.values())
            calls = deployment.calls
            per_cycle.append((calls["taskQueueCounts"] + calls["taskQueueCountsBatch"], calls["listWorkers"], elapsed))
            clock.advance(interval)
        source.close()
    return {
        "counts": statistics.mean(c for c, _, _ in per_cycle),
        "first": per_cycle[0][0],
        "workers": statistics.mean(q for _, q, _ in per_cycle),
        "ms": statistics.median(ms for _, _, ms in per_cycle),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3, help="workers (phones) each queue records")
    parser.add_argument("--page-size", type=int, default=1000, help="workers per listWorkers page (server: 1000)")
    args = parser.parse_args()
    logger.remove()  # the plugin's "no batch endpoint (404)" line is expected here
    queues = [f"proj-autophone/gecko-t-lambda-pool-{i:02d}" for i in range(args.pools)]
    records, size = workers(args.workers), args.page_size
    rows = {
        "batch": run(queues, args.cycles, has_batch=True, batch=True, records=records, page_size=size),
        "404 fallback": run(queues, args.cycles, has_batch=False, batch=True, records=records, page_size=size),
        "batch = false": run(queues, args.cycles, has_batch=True, batch=False, records=records, page_size=size),
    }
    print(f"{args.pools} pools of {args.workers} workers ({size} a page), {args.cycles} cycles 30 s apart: "
          "calls per cycle (mean), ms per cycle (median)")
    print(f"{'mode':<14} {'count calls':>11} {'1st cycle':>9} {'listWorkers':>11} {'all calls':>9} {'ms':>8}")
    for mode, row in rows.items():
        print(f"{mode:<14} {row['counts']:>11.1f} {row['first']:>9.0f} {row['workers']:>11.1f} "
              f"{row['counts'] + row['workers']:>9.1f} {row['ms']:>8.1f}")
    batch, single = rows["batch"], rows["batch = false"]
    print(f"count calls, one per queue / batch: {single['counts'] / batch['counts']:.0f}x; "
          f"all calls: {(single['counts'] + single['workers']) / (batch['counts'] + batch['workers']):.2f}x; "
          f"time: {single['ms'] / batch['ms']:.2f}x")


if __name__ == "__main__":
    main()
