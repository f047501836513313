"""The Taskcluster side of the simulated fleet: queues, their tasks, and each queue's record of its workers.

Owns every task (created, claimed), the tasks arriving at each queue (one seeded stream a queue), the workers
polling each queue, and what ``listWorkers`` gives (the quarantined workers, then every worker that claimed).
May not touch: the phones and the jobs' phases (a claim hands the job back to the cloud through ``on_claim``).
"""

from __future__ import annotations

import base64
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from provisioner import QueueCounts, Worker

from .config import FleetConfig, QueueSpec
from .job import Job, Phase
from .timeline import Timeline

WORKER_GROUP = "lambda"
QUARANTINE_SECONDS = 10 * 365 * 86400.0  # a quarantined worker is quarantined until this long after the start


class Queue:
    __slots__ = ("id", "pending", "claimed", "polling", "records", "per_hour", "rng")

    def __init__(self, queue_id: str, per_hour: float, rng: random.Random, records: dict[str, Worker]) -> None:
        self.id = queue_id
        self.pending: deque[int] = deque()  # indices into Queues.tasks, oldest first
        self.claimed = 0
        self.polling: deque[Job] = deque()  # jobs whose worker polls for a task, oldest first (stale entries skipped)
        self.records = records  # what listWorkers gives, by worker id: the quarantined, then every worker that claimed
        self.per_hour = per_hour
        self.rng = rng


class Queues:
    """The queues by id (made on first use); ``on_claim(job)`` is the cloud's part of a claim (set by the fleet)."""

    def __init__(self, config: FleetConfig, time: Timeline, started_at: float) -> None:
        self.config, self._time = config, time
        self._task_rng = random.Random(f"{config.seed}/tasks")
        until = started_at + QUARANTINE_SECONDS
        self._quarantine_records = {
            udid: Worker(udid, quarantined_until=until, worker_group=WORKER_GROUP) for udid in config.quarantined
        }
        self._queues: dict[str, Queue] = {}
        self.tasks: list[list[Any]] = []  # [queue id, created_at, claimed_at or None]
        self.on_claim: Callable[[Job], None] = lambda job: None

    def counts(self, queues: Iterable[str]) -> dict[str, QueueCounts]:
        out = {}
        for queue_id in queues:
            queue = self._queues.get(queue_id)
            out[queue_id] = QueueCounts(len(queue.pending), queue.claimed) if queue else QueueCounts(0, 0)
        return out

    def workers(self, queues: Iterable[str]) -> dict[str, list[Worker]]:
        answer = {}
        for queue_id in queues:
            queue = self._queues.get(queue_id)
            answer[queue_id] = list((queue.records if queue else self._quarantine_records).values())
        return answer

    def queue(self, queue_id: str) -> Queue:
        queue = self._queues.get(queue_id)
        if queue is None:
            spec = self.config.queues.get(queue_id, QueueSpec())
            rng = random.Random(f"{self.config.seed}/q/{queue_id}")
            queue = self._queues[queue_id] = Queue(queue_id, spec.per_hour, rng, dict(self._quarantine_records))
            self._schedule_arrival(queue)
        return queue

    def _schedule_arrival(self, queue: Queue) -> None:
        if queue.per_hour > 0:
            self._time.at(self._time.now + queue.rng.expovariate(queue.per_hour / 3600.0), self._arrive, queue)

    def _arrive(self, queue: Queue) -> None:
        self.add_tasks(queue, 1)
        self._schedule_arrival(queue)

    def add_tasks(self, queue: Queue, n: int) -> None:
        for _ in range(n):
            queue.pending.append(len(self.tasks))
            self.tasks.append([queue.id, self._time.now, None])
        while queue.pending and queue.polling:
            job = queue.polling.popleft()
            if job.phase is Phase.POLLING:
                self.claim(job, queue)

    def claim(self, job: Job, queue: Queue) -> None:
        """The job's worker claims the oldest pending task; the queue's record of the worker says so."""
        task = queue.pending.popleft()
        now = self._time.now
        self.tasks[task][2] = now
        queue.claimed += 1
        job.task = task
        assert job.phone is not None
        udid = job.phone.udid
        task_id = base64.urlsafe_b64encode(self._task_rng.getrandbits(128).to_bytes(16, "big")).decode()[:22]
        first = queue.records.get(udid)
        first_claim = first.first_claim if first is not None and first.first_claim is not None else now
        queue.records[udid] = Worker(udid, f"{task_id}/0", first_claim, worker_group=WORKER_GROUP)
        self.on_claim(job)

    def task_done(self, job: Job) -> None:
        self._queues[job.queue].claimed -= 1
