"""A simulated fleet: Taskcluster-like queues and a cloud of phones that run one job each.

The model follows what production showed (see DESIGN.md and the reference notes):

- a launch pinned to a phone starts a cloud job on it, which goes through the phases of :mod:`.job`, each
  timed by a setting of :mod:`.config`: ``initiated`` while the cloud prepares the phone, then ``running``
  while ``pre`` installs the worker (minutes: the worker has claimed nothing yet), then the worker polls the
  pool's queue and claims one pending task, runs it and the job ends ``completed`` after ``post``; a worker
  that finds no task waits its idle timeout (the pool's ``idle_timeout``, else ``idle_timeout_seconds``) for
  one to arrive, else the job ends ``wasted`` (an idle-out when the launch was warm, counted apart); a
  quarantined worker claims nothing;
- after a job ends the phone is listed ``cleanup`` for ``cleanup_seconds``, then idle;
- the device list lags: a phone that a job just took keeps being listed idle (``active``) for
  ``list_lag_seconds``;
- a job launched on a phone that is taken is ``blocked`` until the phone frees;
- a selector launch gets a phone picked by the cloud among the idle phones that match, a group launch (a pool
  with ``targeting = "group"``, its launch naming no phone) among the group's idle members, whether or not the
  host would avoid the one picked (quarantined, say); the job list names a group job's phone only once it runs;
  a launch naming no phone that finds none free waits for one (``no_free_phone`` counts those);
- the queue keeps a record of every worker that claimed from it (``workers``), as Taskcluster's ``listWorkers``;
- remote calls fail for a while (``faults``): an endpoint answers an error, garbage, or nothing at all. On a
  virtual clock a hang is a timeout: the call costs its timeout in clock time, then fails. A launch that times
  out may still have reached the cloud (``went_through``): its job runs, though the caller was told it failed.

The simulation is event driven and lazy: every public method first processes, in time order, the events due up
to the clock's monotonic time (task arrivals, phase changes, phones freed): the service's own clock, which a step of
the host's wall clock does not move (its timestamps, ``created_at``, are on it). It never sleeps (a call's own duration, a
timeout or an upload, is a ``clock.sleep``), so it runs as well on a virtual clock that jumps hours ahead in one
step. Randomness comes from ``random.Random`` instances seeded from the configured seed, one stream per
purpose, so the results only depend on the seed and on the calls made.

Its rooms: :mod:`.timeline` (the time and the events), :mod:`.queues` (tasks and the queues' worker records),
:mod:`.cloud` (phones, jobs and their phases), :mod:`.faults` (calls counted, and failed in fault windows). This
module is the face the plugins call: each public method takes the lock, brings the events up to now, asks a room.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from provisioner import (
    Clock, JobState, LaunchRequest, LaunchResult, Phone, Pool, QueueCounts, RemoteJob, Worker, monotonic,
)

from .cloud import Cloud
from .config import FleetConfig, QueueSpec
from .faults import Faults, TimedOut
from .job import Phase
from .queues import Queues
from .timeline import Timeline

__all__ = ["Fleet", "FleetConfig", "QueueSpec"]

WORKERS_PAGE = 1000  # workers per page of listWorkers


class Fleet:
    """The simulated queues, phones and cloud jobs. Every public method is thread-safe."""

    def __init__(self, config: FleetConfig, clock: Clock, job_tag: str = "provisioner") -> None:
        self.config = config
        self.clock = clock
        self.job_tag = job_tag
        self._lock = threading.RLock()
        self._time = Timeline(monotonic(clock))
        self._started_at = self._time.now
        self._launch_rng = random.Random(f"{config.seed}/launch")
        self._faults = Faults(config, clock, self._lock, lambda: self._time.now, self._started_at)
        self._counters: Counter[str] = Counter()
        self._queues = Queues(config, self._time, self._started_at)
        self._cloud = Cloud(config, job_tag, self._time, self._queues, self._counters)
        self._phones = self._cloud.phones
        for queue_id, spec in config.queues.items():
            self._queues.add_tasks(self._queues.queue(queue_id), spec.burst)

    # --- public API: what the plugins call ---------------------------------------------------------------------
    def counts(self, queues: Iterable[str]) -> dict[str, QueueCounts]:
        """Pending and claimed tasks per queue. Raises ``RemoteError`` during a fault window.

        Counted as Taskcluster's batch endpoint costs: one call per 1,000 queues."""
        queues = list(queues)
        self._faults.gate("counts", max(1, -(-len(queues) // 1000)))
        with self._lock:
            self._advance()
            return self._queues.counts(queues)

    def workers(self, queues: Iterable[str]) -> dict[str, list[Worker]]:
        """Per queue, what the queue's ``listWorkers`` gives: every quarantined worker (claimed or not) and every
        worker that ever claimed a task from it, with its latest task and first claim. Raises ``RemoteError``
        during a fault window. Counted as the real endpoint costs: one call per queue and page of 1,000 workers."""
        with self._lock:
            self._advance()
            answer = self._queues.workers(queues)
        self._faults.gate("workers", sum(max(1, -(-len(listed) // WORKERS_PAGE)) for listed in answer.values()))
        return answer

    def phones(self) -> list[Phone]:
        """Every phone in the cloud's fixed order; one a job took less than ``list_lag_seconds`` ago says idle."""
        self._faults.gate("phones")
        with self._lock:
            self._advance()
            return list(self._cloud.listed.values())

    def jobs(self, since: float) -> list[RemoteJob]:
        """Our jobs (first label is the job tag) created at or after ``since``, oldest first."""
        self._faults.gate("jobs")
        with self._lock:
            self._advance()
            return self._cloud.our_jobs(since)

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Submit a job: the call lasts ``upload_seconds``, then the cloud has it. Raises ``RemoteError`` during a
        fault window (a timed-out one may still have gone through)."""
        try:
            self._faults.gate("launch")
        except TimedOut as exc:
            if exc.went_through and not request.dry_run and (not request.udid or request.udid in self._phones):
                with self._lock:
                    self._advance()
                    self._cloud.submit(request)
            raise
        if request.dry_run:
            return LaunchResult(ok=True, detail="dry run: nothing launched")
        self.clock.sleep(self.config.upload_seconds)  # outside the lock: other callers go on meanwhile
        with self._lock:
            self._advance()
            unlucky = self._launch_rng.random() < self.config.launch_failure_rate
            if request.udid and request.udid not in self._phones:
                return self._failed(f"no phone with UDID {request.udid} in the simulated cloud")
            if unlucky:
                return self._failed("simulated submission failure (launch_failure_rate)")
            return self._cloud.submit(request)

    def add_tasks(self, queue_id: str, n: int) -> None:
        """Create ``n`` tasks in a queue now (tests and benchmarks)."""
        with self._lock:
            self._advance()
            self._queues.add_tasks(self._queues.queue(queue_id), n)

    def catalog(self) -> list[Phone]:
        """Every phone with its model and OS version, as all idle; not a remote call (benchmarks use it)."""
        return self._cloud.catalog()

    def fault_log(self) -> list[tuple[float, str, str]]:
        """(when, endpoint, kind) of every call a fault window made fail, in time order."""
        with self._lock:
            return list(self._faults.log)

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks: launches, wasted jobs, double bookings, task creation and claim times..."""
        with self._lock:
            now = self._advance()
            states = Counter(job.state.value for job in self._cloud.jobs if job.phase is not Phase.ENDED)
            tasks = [tuple(t) for t in self._queues.tasks]
            return {
                "now": now,
                "elapsed": now - self._started_at,
                "launches": self._counters["launches"],
                "launch_failures": self._counters["launch_failures"],
                "double_bookings": self._counters["double_bookings"],
                "quarantined_launches": self._counters["quarantined_launches"],
                "no_free_phone": self._counters["no_free_phone"],  # jobs naming no phone that found none free
                "faulty_launches": self._counters["faulty_launches"],
                "completed": self._counters["completed"],
                "wasted": self._counters["wasted"],  # demand launches whose worker found no task
                "idle_outs": self._counters["idle_outs"],  # warm launches whose worker found no task
                "waiting_seconds": self._counters["waiting_seconds"],  # phone time workers spent waiting for a task
                "failed": self._counters["failed"],
                "jobs_starting": states[JobState.STARTING.value],
                "jobs_running": states[JobState.RUNNING.value],
                "tasks_created": len(tasks),
                "tasks_claimed": sum(1 for t in tasks if t[2] is not None),
                "tasks": tasks,  # (queue id, created_at, claimed_at or None), in creation order
                "occupancy": list(self._cloud.occupancy),  # (time, +1 a job took a phone / -1 it left it), in order
                "calls": dict(self._faults.calls),  # remote calls by endpoint
                "faults": dict(Counter(endpoint for _, endpoint, _ in self._faults.log)),  # calls made to fail
            }

    def check(self, pools: Sequence[Pool]) -> list[str]:
        """Problems of pools with this fleet's phones: UDIDs it does not have, selectors matching nothing."""
        return self._cloud.check(pools)

    def _failed(self, detail: str) -> LaunchResult:
        self._counters["launch_failures"] += 1
        return LaunchResult(ok=False, detail=detail)

    def _advance(self) -> float:
        """Process every event due up to the clock's now; return the simulation's time (calls count in ``Faults.gate``)."""
        return self._time.advance(monotonic(self.clock))
