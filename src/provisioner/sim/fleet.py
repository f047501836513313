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
- a selector launch gets a phone picked by the cloud among the idle phones that match;
- the queue keeps a record of every worker that claimed from it (``workers``), as Taskcluster's ``listWorkers``;
- remote calls fail for a while (``faults``): an endpoint answers an error, garbage, or nothing at all. On a
  virtual clock a hang is a timeout: the call costs its timeout in clock time, then fails. A launch that times
  out may still have reached the cloud (``went_through``): its job runs, though the caller was told it failed.

The simulation is event driven and lazy: every public method first processes, in time order, the events due up
to ``clock.now()`` (task arrivals, phase changes, phones freed). It never sleeps (a call's own duration, a
timeout or an upload, is a ``clock.sleep``), so it runs as well on a virtual clock that jumps hours ahead in one
step. Randomness comes from ``random.Random`` instances seeded from the configured seed, one stream per
purpose, so the results only depend on the seed and on the calls made.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import itertools
import random
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from provisioner import (
    Clock, JobState, LaunchRequest, LaunchResult, Phone, Pool, QueueCounts, RemoteError, RemoteJob, Selector, Worker,
)
from .config import FaultSpec, FleetConfig, QueueSpec
from .job import CloudPhone, Job, Phase

__all__ = ["Fleet", "FleetConfig", "QueueSpec"]

JOB_URL = "https://sim.invalid/hyperexecute/task?jobId={job_id}"
WORKER_GROUP = "lambda"
WORKERS_PAGE = 1000  # workers per page of listWorkers
QUARANTINE_SECONDS = 10 * 365 * 86400.0  # a quarantined worker is quarantined until this long after the start


class _TimedOut(RemoteError):
    """A call that got no answer in time; for a launch, ``went_through`` says whether the cloud got it anyway."""

    def __init__(self, message: str, went_through: bool = False) -> None:
        super().__init__(message)
        self.went_through = went_through


# --- the simulation's inner state ------------------------------------------------------------------------------

class _Queue:
    __slots__ = ("id", "pending", "claimed", "polling", "records", "per_hour", "rng")

    def __init__(self, queue_id: str, per_hour: float, rng: random.Random, records: dict[str, Worker]) -> None:
        self.id = queue_id
        self.pending: deque[int] = deque()  # indices into Fleet._tasks, oldest first
        self.claimed = 0
        self.polling: deque[Job] = deque()  # jobs whose worker polls for a task, oldest first (stale entries skipped)
        self.records = records  # what listWorkers gives, by worker id: the quarantined, then every worker that claimed
        self.per_hour = per_hour
        self.rng = rng


def _selects(selector: Selector | None, kind: tuple[str, str]) -> bool:
    if selector is None:
        return True
    return (not selector.model or selector.model == kind[0]) and (
        not selector.os_version or str(selector.os_version) == kind[1]
    )


class Fleet:
    """The simulated queues, phones and cloud jobs. Every public method is thread-safe."""

    def __init__(self, config: FleetConfig, clock: Clock, job_tag: str = "provisioner") -> None:
        self.config = config
        self.clock = clock
        self.job_tag = job_tag
        self._lock = threading.RLock()
        self._now = clock.now()
        self._started_at = self._now
        self._events: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = itertools.count()
        seed = config.seed
        self._launch_rng = random.Random(f"{seed}/launch")
        self._pick_rng = random.Random(f"{seed}/pick")
        self._id_rng = random.Random(f"{seed}/ids")
        self._fault_rng = random.Random(f"{seed}/faults")
        self._task_rng = random.Random(f"{seed}/tasks")
        self._fault_log: list[tuple[float, str, str]] = []  # (when, endpoint, kind) of every call made to fail
        self._occupancy: list[tuple[float, int]] = []  # (when, +1/-1): a job took or left a phone
        faulty = set(config.faulty)
        self._phones: dict[str, CloudPhone] = {}
        for i, udid in enumerate(config.udids()):
            model = config.models[i % len(config.models)]
            os_version = config.os_versions[i % len(config.os_versions)]
            self._phones[udid] = CloudPhone(udid, model, os_version, udid in faulty)
        # idle phones by (model, os_version), each an insertion-ordered dict used as an ordered set
        self._idle: dict[tuple[str, str], dict[str, CloudPhone]] = {}
        for phone in self._phones.values():
            self._idle.setdefault(phone.kind, {})
            if not phone.faulty:
                self._idle[phone.kind][phone.udid] = phone
        # the device list as phones() gives it, in the cloud's fixed order: each entry is replaced when it changes
        self._listed = {udid: phone.view(self._now) for udid, phone in self._phones.items()}
        self._selector_blocked: deque[Job] = deque()  # selector jobs no idle phone could take yet
        self._quarantined = frozenset(config.quarantined)
        until = self._started_at + QUARANTINE_SECONDS
        self._quarantine_records = {
            udid: Worker(udid, quarantined_until=until, worker_group=WORKER_GROUP) for udid in config.quarantined
        }
        self._queues: dict[str, _Queue] = {}
        self._tasks: list[list[Any]] = []  # [queue id, created_at, claimed_at or None]
        self._jobs: list[Job] = []  # in creation order
        # our jobs, as the provider reports them: a snapshot refreshed on each change, and created_at for bisect
        self._ours: list[RemoteJob] = []
        self._our_times: list[float] = []
        self._calls: Counter[str] = Counter()
        self._counters: Counter[str] = Counter()
        for queue_id, spec in config.queues.items():
            queue = self._queue(queue_id)
            self._add_tasks(queue, spec.burst)

    # --- public API: what the plugins call ---------------------------------------------------------------------

    def counts(self, queues: Iterable[str]) -> dict[str, QueueCounts]:
        """Pending and claimed tasks per queue. Raises ``RemoteError`` during a fault window.

        Counted as Taskcluster's batch endpoint costs: one call per 1,000 queues."""
        queues = list(queues)
        self._gate("counts", max(1, -(-len(queues) // 1000)))
        with self._lock:
            self._advance()
            out = {}
            for queue_id in queues:
                queue = self._queues.get(queue_id)
                out[queue_id] = QueueCounts(len(queue.pending), queue.claimed) if queue else QueueCounts(0, 0)
            return out

    def workers(self, queues: Iterable[str]) -> dict[str, list[Worker]]:
        """Per queue, what the queue's ``listWorkers`` gives: every quarantined worker (claimed or not) and every
        worker that ever claimed a task from it, with its latest task and first claim. Raises ``RemoteError``
        during a fault window. Counted as the real endpoint costs: one call per queue and page of 1,000 workers."""
        with self._lock:
            self._advance()
            answer = {}
            for queue_id in queues:
                queue = self._queues.get(queue_id)
                answer[queue_id] = list((queue.records if queue else self._quarantine_records).values())
        self._gate("workers", sum(max(1, -(-len(listed) // WORKERS_PAGE)) for listed in answer.values()))
        return answer

    def phones(self) -> list[Phone]:
        """Every phone in the cloud's fixed order; one a job took less than ``list_lag_seconds`` ago says idle."""
        self._gate("phones")
        with self._lock:
            self._advance()
            return list(self._listed.values())

    def jobs(self, since: float) -> list[RemoteJob]:
        """Our jobs (first label is the job tag) created at or after ``since``, oldest first."""
        self._gate("jobs")
        with self._lock:
            self._advance()
            return self._ours[bisect.bisect_left(self._our_times, since):]

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Submit a job: the call lasts ``upload_seconds``, then the cloud has it. Raises ``RemoteError`` during a
        fault window (a timed-out one may still have gone through)."""
        try:
            self._gate("launch")
        except _TimedOut as exc:
            if exc.went_through and not request.dry_run and (not request.udid or request.udid in self._phones):
                with self._lock:
                    self._advance()
                    self._submit(request)
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
            return self._submit(request)

    def _submit(self, request: LaunchRequest) -> LaunchResult:
        """The cloud takes the job: it waits for its phone, or the cloud picks one for a selector launch."""
        now = self._now
        phone = self._phones.get(request.udid) if request.udid else None
        job = Job(str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4)), request, now,
                  self.config.idle_timeout_seconds)
        self._jobs.append(job)
        if job.labels[:1] == (self.job_tag,):
            job.index = len(self._ours)
            self._ours.append(job.remote())
            self._our_times.append(now)
        self._queue(job.queue)
        self._counters["launches"] += 1
        if phone is not None:
            self._launch_pinned(job, phone)
        else:
            self._launch_selector(job)
        return LaunchResult(ok=True, job_id=job.id, url=JOB_URL.format(job_id=job.id), detail="submitted")

    def add_tasks(self, queue_id: str, n: int) -> None:
        """Create ``n`` tasks in a queue now (tests and benchmarks)."""
        with self._lock:
            self._advance()
            self._add_tasks(self._queue(queue_id), n)

    def catalog(self) -> list[Phone]:
        """Every phone with its model and OS version, as all idle; not a remote call (benchmarks use it)."""
        return [Phone(p.udid, p.model, p.os_version) for p in self._phones.values()]

    def fault_log(self) -> list[tuple[float, str, str]]:
        """(when, endpoint, kind) of every call a fault window made fail, in time order."""
        with self._lock:
            return list(self._fault_log)

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks: launches, wasted jobs, double bookings, task creation and claim times..."""
        with self._lock:
            now = self._advance()
            states = Counter(job.state.value for job in self._jobs if job.phase is not Phase.ENDED)
            tasks = [tuple(t) for t in self._tasks]
            return {
                "now": now,
                "elapsed": now - self._started_at,
                "launches": self._counters["launches"],
                "launch_failures": self._counters["launch_failures"],
                "double_bookings": self._counters["double_bookings"],
                "quarantined_launches": self._counters["quarantined_launches"],
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
                "occupancy": list(self._occupancy),  # (time, +1 a job took a phone / -1 it left it), in order
                "calls": dict(self._calls),  # remote calls by endpoint
                "faults": dict(Counter(endpoint for _, endpoint, _ in self._fault_log)),  # calls made to fail
            }

    def check(self, pools: Sequence[Pool]) -> list[str]:
        """Problems of pools with this fleet's phones: UDIDs it does not have, selectors matching nothing."""
        problems = []
        kinds = list(self._idle)
        for pool in pools:
            for udid in pool.udids:
                if udid not in self._phones:
                    problems.append(f"pool {pool.name}: phone {udid} is not in the simulated fleet")
            if not pool.udids and not any(_selects(pool.selector, kind) for kind in kinds):
                problems.append(f"pool {pool.name}: selector {pool.selector} matches no phone of the simulated fleet")
        return problems

    # --- faults -----------------------------------------------------------------------------------------------

    def _gate(self, endpoint: str, calls: int = 1) -> None:
        """Count the call(s) the real service would need; during a fault window on the endpoint, fail it."""
        with self._lock:
            self._calls[endpoint] += calls
            now = max(self._now, self.clock.now())
            fault = self._fault_now(endpoint, now)
            if fault is None:
                return
            self._fault_log.append((now, endpoint, fault.kind))
            went_through = endpoint == "launch" and self._fault_rng.random() < fault.went_through
        if fault.kind == "timeout":
            self.clock.sleep(fault.timeout_seconds)  # outside the lock: other callers go on meanwhile
            raise _TimedOut(f"sim: {endpoint}: no answer within {fault.timeout_seconds:g} s", went_through)
        if fault.kind == "garbage":
            raise RemoteError(f"sim: {endpoint}: answered garbage (HTTP 200, body is not JSON)")
        raise RemoteError(f"sim: {endpoint}: HTTP 503 Service Unavailable")

    def _fault_now(self, endpoint: str, now: float) -> FaultSpec | None:
        since = now - self._started_at
        for fault in self.config.faults:
            if fault.start <= since < fault.end and endpoint in fault.endpoints:
                if fault.rate >= 1 or self._fault_rng.random() < fault.rate:
                    return fault
        return None

    # --- launching --------------------------------------------------------------------------------------------

    def _failed(self, detail: str) -> LaunchResult:
        self._counters["launch_failures"] += 1
        return LaunchResult(ok=False, detail=detail)

    def _launch_pinned(self, job: Job, phone: CloudPhone) -> None:
        if phone.udid in self._quarantined:
            self._counters["quarantined_launches"] += 1
        if phone.faulty:
            # the cloud never gets the phone to start the job: it fails once its setup time is over
            self._counters["faulty_launches"] += 1
            self._at(self._now + self.config.startup_seconds, self._fail_unplaced, job)
            return
        if phone.job is not None or phone.blocked:
            self._counters["double_bookings"] += 1
        if phone.job is None and not phone.cleaning and not phone.blocked:
            self._place(job, phone)
        else:
            phone.blocked.append(job)  # blocked: it gets the phone once the jobs before it are done

    def _launch_selector(self, job: Job) -> None:
        candidates = [p for kind, idle in self._idle.items() if _selects(job.selector, kind) for p in idle.values()]
        if candidates:
            self._place_selected(job, self._pick_rng.choice(candidates))
        else:
            self._selector_blocked.append(job)

    def _place_selected(self, job: Job, phone: CloudPhone) -> None:
        """The cloud picked this phone for a selector job."""
        if phone.udid in self._quarantined:
            self._counters["quarantined_launches"] += 1
        self._place(job, phone)

    def _place(self, job: Job, phone: CloudPhone) -> None:
        """The job takes the phone, ``initiated``; the device list goes on saying idle for a while."""
        self._idle[phone.kind].pop(phone.udid, None)
        phone.job = job
        self._occupancy.append((self._now, 1))
        phone.listed_idle_until = self._now + self.config.list_lag_seconds
        self._at(phone.listed_idle_until, self._relist, phone)
        job.phone = phone
        self._set_phase(job, Phase.INITIATED)
        self._at(self._now + self.config.startup_seconds, self._run_pre, job)

    # --- events -----------------------------------------------------------------------------------------------

    def _advance(self) -> float:
        """Process every event due up to the clock's now; return the simulation's time (calls count in ``_gate``)."""
        now = max(self._now, self.clock.now())
        events = self._events
        while events and events[0][0] <= now:
            when, _, handler, arg = heapq.heappop(events)
            self._now = when
            handler(arg)
        self._now = now
        return now

    def _at(self, when: float, handler: Callable[[Any], None], arg: Any) -> None:
        heapq.heappush(self._events, (when, next(self._seq), handler, arg))

    def _queue(self, queue_id: str) -> _Queue:
        queue = self._queues.get(queue_id)
        if queue is None:
            spec = self.config.queues.get(queue_id, QueueSpec())
            rng = random.Random(f"{self.config.seed}/q/{queue_id}")
            queue = self._queues[queue_id] = _Queue(queue_id, spec.per_hour, rng, dict(self._quarantine_records))
            self._schedule_arrival(queue)
        return queue

    def _schedule_arrival(self, queue: _Queue) -> None:
        if queue.per_hour > 0:
            self._at(self._now + queue.rng.expovariate(queue.per_hour / 3600.0), self._arrive, queue)

    def _arrive(self, queue: _Queue) -> None:
        self._add_tasks(queue, 1)
        self._schedule_arrival(queue)

    def _add_tasks(self, queue: _Queue, n: int) -> None:
        for _ in range(n):
            queue.pending.append(len(self._tasks))
            self._tasks.append([queue.id, self._now, None])
        while queue.pending and queue.polling:
            job = queue.polling.popleft()
            if job.phase is Phase.POLLING:
                self._claim(job, queue)

    def _run_pre(self, job: Job) -> None:
        """The cloud says ``running``: ``pre`` installs the worker, which claims nothing yet."""
        self._set_phase(job, Phase.PRE)
        self._at(self._now + self.config.pre_seconds, self._poll, job)

    def _poll(self, job: Job) -> None:
        """The worker asks its queue for a task until one comes or it idles out (a quarantined one gets none)."""
        self._set_phase(job, Phase.POLLING)
        job.polled_at = self._now
        queue = self._queues[job.queue]
        assert job.phone is not None
        if job.phone.udid not in self._quarantined:
            if queue.pending:
                self._claim(job, queue)
                return
            queue.polling.append(job)
        self._at(self._now + job.idle_timeout, self._idle_out, job)

    def _claim(self, job: Job, queue: _Queue) -> None:
        task = queue.pending.popleft()
        self._waited(job)
        self._tasks[task][2] = self._now
        queue.claimed += 1
        job.task = task
        assert job.phone is not None
        udid = job.phone.udid
        task_id = base64.urlsafe_b64encode(self._task_rng.getrandbits(128).to_bytes(16, "big")).decode()[:22]
        first = queue.records.get(udid)
        first_claim = first.first_claim if first is not None and first.first_claim is not None else self._now
        queue.records[udid] = Worker(udid, f"{task_id}/0", first_claim, worker_group=WORKER_GROUP)
        self._set_phase(job, Phase.TASK)
        self._at(self._now + self.config.task_seconds, self._task_done, job)

    def _idle_out(self, job: Job) -> None:
        if job.phase is Phase.POLLING:
            self._waited(job)
            self._run_post(job)

    def _waited(self, job: Job) -> None:
        if job.polled_at is not None:
            self._counters["waiting_seconds"] += self._now - job.polled_at

    def _task_done(self, job: Job) -> None:
        self._queues[job.queue].claimed -= 1
        self._run_post(job)

    def _run_post(self, job: Job) -> None:
        """The worker exited: ``post`` reboots the phone, then the job ends."""
        self._set_phase(job, Phase.POST)
        self._at(self._now + self.config.post_seconds, self._finish, job)

    def _finish(self, job: Job) -> None:
        self._end(job, "completed" if job.task >= 0 else "wasted")

    def _fail_unplaced(self, job: Job) -> None:
        self._end(job, "failed")

    def _end(self, job: Job, outcome: str) -> None:
        job.outcome = outcome
        job.ended_at = self._now
        self._set_phase(job, Phase.ENDED)
        self._counters["idle_outs" if outcome == "wasted" and job.kind == "warm" else outcome] += 1
        phone = job.phone
        if phone is None or phone.job is not job:
            return
        phone.job = None
        self._occupancy.append((self._now, -1))
        phone.cleaning = True
        self._relist(phone)
        self._at(self._now + self.config.cleanup_seconds, self._release, phone)

    def _release(self, phone: CloudPhone) -> None:
        """Cleanup is over: the first job blocked on the phone takes it, else a selector job, else it is idle."""
        phone.cleaning = False
        self._relist(phone)
        if phone.blocked:
            self._place(phone.blocked.popleft(), phone)
            return
        for i, job in enumerate(self._selector_blocked):
            if _selects(job.selector, phone.kind):
                del self._selector_blocked[i]
                self._place_selected(job, phone)
                return
        self._idle[phone.kind][phone.udid] = phone

    def _set_phase(self, job: Job, phase: Phase) -> None:
        job.phase = phase
        if job.index >= 0:
            self._ours[job.index] = job.remote()
        if job.phone is not None:
            self._relist(job.phone)

    def _relist(self, phone: CloudPhone) -> None:
        """Update the phone's entry in the device list. Called on every change of what it shows (a job takes or
        leaves the phone or changes phase, cleanup ends, the list lag runs out: an event of its own), so that
        ``phones`` copies a list rather than asking each of thousands of phones its state every call."""
        self._listed[phone.udid] = phone.view(self._now)
