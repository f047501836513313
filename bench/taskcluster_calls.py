"""Remote calls per cycle of the taskcluster queue source for N pools: batch counts against one call per queue.

Runs the plugin against a local Taskcluster stub (http.server on 127.0.0.1) that counts the requests it gets,
for three deployments/configurations:

- batch:          the deployment has taskQueueCountsBatch, the plugin uses it (default config);
- 404 fallback:   an older deployment answers 404 to the batch call; the plugin remembers and asks per queue;
- batch = false:  the plugin is told to ask one queue at a time.

Each cycle is what the host does: counts(queues) then quarantined(queues). Prints medians over the cycles.

    .venv/bin/python bench/taskcluster_calls.py [--pools 50] [--cycles 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from provisioner import PluginContext
from provisioner_taskcluster.source import TaskclusterQueues


class Stub(BaseHTTPRequestHandler):
    """Answers taskQueueCounts (single and batch) and listWorkers like a Taskcluster deployment."""

    has_batch = True
    calls: Counter[str] = Counter()
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"  # keep-alive, as the real deployment
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def do_GET(self) -> None:  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/api/queue/v1/task-queues/"):
            self._count("taskQueueCounts")
            queue = urllib.parse.unquote(path.split("/")[5])
            self._answer(200, counts(queue))
        elif path.startswith("/api/worker-manager/v1/provisioners/"):
            self._count("listWorkers")
            self._answer(200, {"workers": [{"workerGroup": "lambda", "workerId": "R5CW5678DEF",
                                            "quarantineUntil": "3025-06-09T22:05:00.000Z"}]})
        else:
            self._answer(404, {"code": "ResourceNotFound", "message": "no such endpoint"})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._count("taskQueueCountsBatch")
        if not self.has_batch:
            self._answer(404, {"code": "ResourceNotFound", "message": "no such endpoint"})
            return
        self._answer(200, {"taskQueueCounts": [counts(q) for q in body["taskQueueIds"]]})

    def _count(self, endpoint: str) -> None:
        with self.lock:
            self.calls[endpoint] += 1

    def _answer(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def counts(queue: str) -> dict[str, Any]:
    provisioner_id, worker_type = queue.split("/")
    return {"taskQueueId": queue, "provisionerId": provisioner_id, "workerType": worker_type,
            "pendingTasks": len(worker_type), "claimedTasks": 1}


def run(root_url: str, queues: list[str], cycles: int, has_batch: bool, batch: bool) -> dict[str, float]:
    Stub.has_batch = has_batch
    source = TaskclusterQueues.from_options({"root_url": root_url, "batch": batch}, PluginContext(environ={}))
    per_cycle: list[tuple[int, int, float]] = []
    try:
        for _ in range(cycles):
            Stub.calls.clear()
            start = time.perf_counter()
            known = source.counts(queues)
            quarantined = source.quarantined(queues)
            elapsed = (time.perf_counter() - start) * 1000
            assert all(v is not None for v in known.values()) and all(v is not None for v in quarantined.values())
            count_calls = Stub.calls["taskQueueCounts"] + Stub.calls["taskQueueCountsBatch"]
            per_cycle.append((count_calls, Stub.calls["listWorkers"], elapsed))
    finally:
        source.close()
    return {
        "counts": statistics.median(c for c, _, _ in per_cycle),
        "first": per_cycle[0][0],
        "quarantine": statistics.median(q for _, q, _ in per_cycle),
        "ms": statistics.median(ms for _, _, ms in per_cycle),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args()
    queues = [f"proj-autophone/gecko-t-lambda-pool-{i:02d}" for i in range(args.pools)]

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        rows = {
            "batch": run(root_url, queues, args.cycles, has_batch=True, batch=True),
            "404 fallback": run(root_url, queues, args.cycles, has_batch=False, batch=True),
            "batch = false": run(root_url, queues, args.cycles, has_batch=True, batch=False),
        }
    finally:
        server.shutdown()
        server.server_close()

    print(f"{args.pools} pools, {args.cycles} cycles, medians per cycle (counts() then quarantined())")
    print(f"{'mode':<14} {'count calls':>11} {'1st cycle':>9} {'listWorkers':>11} {'all calls':>9} {'ms':>8}")
    for mode, row in rows.items():
        print(f"{mode:<14} {row['counts']:>11.0f} {row['first']:>9.0f} {row['quarantine']:>11.0f} "
              f"{row['counts'] + row['quarantine']:>9.0f} {row['ms']:>8.1f}")
    batch, single = rows["batch"], rows["batch = false"]
    print(f"count calls, one per queue / batch: {single['counts'] / batch['counts']:.0f}x; "
          f"all calls: {(single['counts'] + single['quarantine']) / (batch['counts'] + batch['quarantine']):.2f}x; "
          f"time: {single['ms'] / batch['ms']:.2f}x")


if __name__ == "__main__":
    main()
