"""A simulated fleet: Taskcluster-like queues and a cloud of phones that run one job each.

The model follows what production showed (see DESIGN.md and the reference notes):

- a launch pinned to a phone starts a cloud job on it; the job is *starting* for ``startup_seconds`` (setup
  installs tools on the phone), then its worker claims one pending task of the pool's queue, runs it for
  ``task_seconds`` and the job ends ``completed``; a worker that finds no task waits ``idle_timeout_seconds`` for
  one to arrive and else ends ``wasted``; a quarantined worker claims nothing;
- after a job ends the phone is busy cleaning up for ``cleanup_seconds``, then idle;
- the device list lags: a phone that a job just took keeps being listed idle (``active``) for
  ``list_lag_seconds``;
- a job launched on a phone that is taken waits in the cloud's queue until the phone frees;
- a selector launch gets a phone picked by the cloud among the idle phones that match;
- remote calls fail for a while (``faults``): an endpoint answers an error, garbage, or nothing at all. On a
  virtual clock a hang is a timeout: the call costs its timeout in clock time, then fails. A launch that times
  out may still have reached the cloud (``went_through``): its job runs, though the caller was told it failed.

The simulation is event driven and lazy: every public method first processes, in time order, the events due up
to ``clock.now()`` (task arrivals, claims, job ends, phones freed). It never sleeps, so it runs as well on a
virtual clock that jumps hours ahead in one step. Randomness comes from ``random.Random`` instances seeded from
the configured seed, one stream per purpose, so the results only depend on the seed and on the calls made.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from ..model import JobState, LaunchRequest, LaunchResult, Phone, PhoneState, Pool, QueueCounts, RemoteJob, Selector
from ..types import RemoteError

JOB_URL = "https://sim.invalid/hyperexecute/task?jobId={job_id}"


@dataclass(frozen=True)
class QueueSpec:
    """How tasks appear in one simulated queue: ``burst`` present at start, then ``per_hour`` (Poisson)."""

    burst: int = 0
    per_hour: float = 0.0


ENDPOINTS = ("counts", "quarantined", "phones", "jobs", "launch")
FAULT_KINDS = ("error", "timeout", "garbage")
FAULT_KEYS = ("start", "end", "endpoints", "kind", "rate", "timeout_seconds", "went_through")


@dataclass(frozen=True)
class FaultSpec:
    """A window during which calls to some endpoints fail.

    ``start`` and ``end`` are seconds after the fleet was created; ``rate`` is the share of calls that fail;
    ``kind`` is ``error`` (an HTTP 5xx), ``garbage`` (an answer that cannot be parsed) or ``timeout`` (no answer:
    the call costs ``timeout_seconds`` of clock time, then fails). ``went_through`` is the share of launches
    that time out but still reached the cloud.
    """

    start: float
    end: float
    endpoints: tuple[str, ...] = ENDPOINTS
    kind: str = "error"
    rate: float = 1.0
    timeout_seconds: float = 30.0
    went_through: float = 0.5


@dataclass(frozen=True)
class FleetConfig:
    """The simulation's parameters (the ``[plugins.sim]`` table, validated)."""

    seed: int | str = 0
    phones: int = 20
    models: tuple[str, ...] = ("Galaxy A55 5G", "Galaxy A51")
    os_versions: tuple[str, ...] = ("14", "11")
    udid_prefix: str = "SIM"
    queues: Mapping[str, QueueSpec] = field(default_factory=dict)
    startup_seconds: float = 210.0
    task_seconds: float = 600.0
    idle_timeout_seconds: float = 120.0
    list_lag_seconds: float = 60.0
    cleanup_seconds: float = 30.0
    launch_failure_rate: float = 0.0
    quarantined: tuple[str, ...] = ()
    faulty: tuple[str, ...] = ()
    faults: tuple[FaultSpec, ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FleetConfig:
        """Build from a ``[plugins.sim]`` table (missing keys take the defaults); ``ValueError`` names a bad key."""
        base = cls()
        get = options.get
        return cls(
            seed=_seed(get("seed", base.seed)),
            phones=_count(get("phones", base.phones), "phones"),
            models=_names(get("models", base.models), "models"),
            os_versions=_names(get("os_versions", base.os_versions), "os_versions"),
            udid_prefix=str(get("udid_prefix", base.udid_prefix)),
            queues=_queues(get("queues", {})),
            startup_seconds=_seconds(get("startup_seconds", base.startup_seconds), "startup_seconds"),
            task_seconds=_seconds(get("task_seconds", base.task_seconds), "task_seconds"),
            idle_timeout_seconds=_seconds(get("idle_timeout_seconds", base.idle_timeout_seconds), "idle_timeout_seconds"),
            list_lag_seconds=_seconds(get("list_lag_seconds", base.list_lag_seconds), "list_lag_seconds"),
            cleanup_seconds=_seconds(get("cleanup_seconds", base.cleanup_seconds), "cleanup_seconds"),
            launch_failure_rate=_rate(get("launch_failure_rate", base.launch_failure_rate)),
            quarantined=_names(get("quarantined", ()), "quarantined", allow_empty=True),
            faulty=_names(get("faulty", ()), "faulty", allow_empty=True),
            faults=_faults(get("faults", ())),
        )

    def udids(self) -> list[str]:
        width = max(4, len(str(self.phones - 1)))
        return [f"{self.udid_prefix}{i:0{width}d}" for i in range(self.phones)]


def _bad(key: str, reason: str) -> ValueError:
    return ValueError(f"[plugins.sim] {key}: {reason}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seed(value: Any) -> int | str:
    if not isinstance(value, (int, str)) or isinstance(value, bool):
        raise _bad("seed", f"expected an integer, got {value!r}")
    return value


def _count(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad(key, f"expected a non-negative integer, got {value!r}")
    return value


def _seconds(value: Any, key: str) -> float:
    if not _number(value) or value < 0:
        raise _bad(key, f"expected a non-negative number of seconds, got {value!r}")
    return float(value)


def _rate(value: Any, key: str = "launch_failure_rate") -> float:
    if not _number(value) or not 0 <= value <= 1:
        raise _bad(key, f"expected a number from 0 to 1, got {value!r}")
    return float(value)


def _faults(value: Any) -> tuple[FaultSpec, ...]:
    if not isinstance(value, (list, tuple)):
        raise _bad("faults", f"expected an array of tables {{start, end, endpoints, kind}}, got {value!r}")
    return tuple(_fault(table, f"faults[{i}]") for i, table in enumerate(value))


def _fault(table: Any, where: str) -> FaultSpec:
    if not isinstance(table, Mapping):
        raise _bad(where, f"expected a table {{start, end, endpoints, kind}}, got {table!r}")
    unknown = sorted(set(table) - set(FAULT_KEYS))
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(FAULT_KEYS)})")
    for key in ("start", "end"):
        if key not in table:
            raise _bad(f"{where}.{key}", "missing (required)")
    start = _seconds(table["start"], f"{where}.start")
    end = _seconds(table["end"], f"{where}.end")
    if end < start:
        raise _bad(f"{where}.end", f"ends ({end:g}) before it starts ({start:g})")
    endpoints = _names(table.get("endpoints", list(ENDPOINTS)), f"{where}.endpoints")
    for name in endpoints:
        if name not in ENDPOINTS:
            raise _bad(f"{where}.endpoints", f"unknown endpoint {name!r} (known: {', '.join(ENDPOINTS)})")
    kind = table.get("kind", "error")
    if kind not in FAULT_KINDS:
        raise _bad(f"{where}.kind", f"expected one of {', '.join(FAULT_KINDS)}, got {kind!r}")
    return FaultSpec(
        start, end, endpoints, kind, _rate(table.get("rate", 1.0), f"{where}.rate"),
        _seconds(table.get("timeout_seconds", 30.0), f"{where}.timeout_seconds"),
        _rate(table.get("went_through", 0.5), f"{where}.went_through"),
    )


def _names(value: Any, key: str, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
        raise _bad(key, f"expected a list of strings, got {value!r}")
    if not value and not allow_empty:
        raise _bad(key, "expected at least one name")
    return tuple(str(v) for v in value)


def _queues(value: Any) -> dict[str, QueueSpec]:
    if not isinstance(value, Mapping):
        raise _bad("queues", f"expected a table of queue ids, got {value!r}")
    specs = {}
    for queue_id, table in value.items():
        where = f"queues.{queue_id}"
        if not isinstance(table, Mapping):
            raise _bad(where, f"expected a table {{burst = <int>, per_hour = <float>}}, got {table!r}")
        unknown = sorted(set(table) - {"burst", "per_hour"})
        if unknown:
            raise _bad(f"{where}.{unknown[0]}", "unknown key (known: burst, per_hour)")
        burst = _count(table.get("burst", 0), f"{where}.burst")
        per_hour = table.get("per_hour", 0.0)
        if not _number(per_hour) or per_hour < 0:
            raise _bad(f"{where}.per_hour", f"expected a non-negative number, got {per_hour!r}")
        specs[str(queue_id)] = QueueSpec(burst, float(per_hour))
    return specs


class _TimedOut(RemoteError):
    """A call that got no answer in time; for a launch, ``went_through`` says whether the cloud got it anyway."""

    def __init__(self, message: str, went_through: bool = False) -> None:
        super().__init__(message)
        self.went_through = went_through


# --- the simulation's inner state ------------------------------------------------------------------------------

STARTING_PHASES = ("queued", "starting")  # waiting for its phone / setting up on it
RUNNING_PHASES = ("waiting", "running")  # worker polling for a task / running one
RAW_STATES = {"active": PhoneState.IDLE, "faulty": PhoneState.UNAVAILABLE}  # others (initiated, busy, cleanup): busy


class _Job:
    __slots__ = (
        "id", "pool", "queue", "labels", "selector", "phone", "phase", "created_at", "ended_at", "outcome", "task",
        "index",
    )

    def __init__(self, job_id: str, request: LaunchRequest, created_at: float) -> None:
        self.id = job_id
        self.pool = request.pool.name
        self.queue = request.pool.queue
        self.labels = tuple(request.labels)
        self.selector = request.pool.selector
        self.phone: _Phone | None = None
        self.phase = "queued"
        self.created_at = created_at
        self.ended_at: float | None = None
        self.outcome = ""
        self.task = -1
        self.index = -1  # in Fleet._ours when the job is ours (first label is the job tag)

    @property
    def state(self) -> JobState:
        if self.phase in STARTING_PHASES:
            return JobState.STARTING
        return JobState.RUNNING if self.phase in RUNNING_PHASES else JobState.ENDED


class _Phone:
    __slots__ = ("udid", "model", "os_version", "job", "waiting", "cleaning", "listed_idle_until", "faulty", "views")

    def __init__(self, udid: str, model: str, os_version: str, faulty: bool) -> None:
        self.udid = udid
        self.model = model
        self.os_version = os_version
        self.job: _Job | None = None  # the job on the phone (starting, polling or running a task)
        self.waiting: deque[_Job] = deque()  # jobs pinned to it, queued in the cloud until it frees
        self.cleaning = False
        self.listed_idle_until = float("-inf")
        self.faulty = faulty
        self.views: dict[str, Phone] = {}  # the provider's view of the phone, by raw state (frozen, reusable)

    @property
    def kind(self) -> tuple[str, str]:
        return (self.model, self.os_version)

    def view(self, now: float) -> Phone:
        """The phone as the device list shows it at ``now``: idle (``active``) for a while after a job took it."""
        raw = "active" if now < self.listed_idle_until else self.raw_state()
        phone = self.views.get(raw)
        if phone is None:
            state = RAW_STATES.get(raw, PhoneState.BUSY)
            phone = self.views[raw] = Phone(self.udid, self.model, self.os_version, state, raw)
        return phone

    def raw_state(self) -> str:
        if self.faulty:
            return "faulty"
        if self.job is not None:
            return "initiated" if self.job.phase == "starting" else "busy"
        return "cleanup" if self.cleaning else "active"


class _Queue:
    __slots__ = ("id", "pending", "claimed", "workers", "per_hour", "rng")

    def __init__(self, queue_id: str, per_hour: float, rng: random.Random) -> None:
        self.id = queue_id
        self.pending: deque[int] = deque()  # indices into Fleet._tasks, oldest first
        self.claimed = 0
        self.workers: deque[_Job] = deque()  # jobs polling for a task, oldest first (stale entries skipped)
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
        self._fault_log: list[tuple[float, str, str]] = []  # (when, endpoint, kind) of every call made to fail
        self._occupancy: list[tuple[float, int]] = []  # (when, +1/-1): a job took or left a phone
        faulty = set(config.faulty)
        self._phones: dict[str, _Phone] = {}
        for i, udid in enumerate(config.udids()):
            model = config.models[i % len(config.models)]
            os_version = config.os_versions[i % len(config.os_versions)]
            self._phones[udid] = _Phone(udid, model, os_version, udid in faulty)
        # idle phones by (model, os_version), each an insertion-ordered dict used as an ordered set
        self._idle: dict[tuple[str, str], dict[str, _Phone]] = {}
        for phone in self._phones.values():
            self._idle.setdefault(phone.kind, {})
            if not phone.faulty:
                self._idle[phone.kind][phone.udid] = phone
        self._selector_waiting: deque[_Job] = deque()  # selector jobs no idle phone could take yet
        self._quarantined = frozenset(config.quarantined)
        self._queues: dict[str, _Queue] = {}
        self._tasks: list[list[Any]] = []  # [queue id, created_at, claimed_at or None]
        self._jobs: list[_Job] = []  # in creation order
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
            self._advance("")
            out = {}
            for queue_id in queues:
                queue = self._queues.get(queue_id)
                out[queue_id] = QueueCounts(len(queue.pending), queue.claimed) if queue else QueueCounts(0, 0)
            return out

    def quarantined(self, queues: Iterable[str]) -> dict[str, frozenset[str]]:
        """Counted as worker-manager's listWorkers costs: at least one call per queue (it has no batch form)."""
        queues = list(queues)
        self._gate("quarantined", max(1, len(queues)))
        with self._lock:
            self._advance("")
            return {queue_id: self._quarantined for queue_id in queues}

    def phones(self) -> list[Phone]:
        """Every phone in the cloud's fixed order; one a job took less than ``list_lag_seconds`` ago says idle."""
        self._gate("phones")
        with self._lock:
            now = self._advance("")
            return [p.view(now) for p in self._phones.values()]

    def jobs(self, since: float) -> list[RemoteJob]:
        """Our jobs (first label is the job tag) created at or after ``since``, oldest first."""
        self._gate("jobs")
        with self._lock:
            self._advance("")
            return self._ours[bisect.bisect_left(self._our_times, since):]

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Submit a job. Raises ``RemoteError`` during a fault window (a timed-out one may still have gone through)."""
        try:
            self._gate("launch")
        except _TimedOut as exc:
            if exc.went_through and not request.dry_run and (not request.udid or request.udid in self._phones):
                with self._lock:
                    self._advance("")
                    self._submit(request)
            raise
        with self._lock:
            now = self._advance("")
            if request.dry_run:
                return LaunchResult(ok=True, detail="dry run: nothing launched")
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
        job = _Job(str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4)), request, now)
        self._jobs.append(job)
        if job.labels[:1] == (self.job_tag,):
            job.index = len(self._ours)
            self._ours.append(self._remote(job))
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
            self._advance("")
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
            now = self._advance("")
            states = Counter(job.state.value for job in self._jobs if job.phase != "ended")
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
                "wasted": self._counters["wasted"],
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

    def _launch_pinned(self, job: _Job, phone: _Phone) -> None:
        if phone.udid in self._quarantined:
            self._counters["quarantined_launches"] += 1
        if phone.faulty:
            # the cloud never gets the phone to start the job: it fails once its setup time is over
            self._counters["faulty_launches"] += 1
            self._at(self._now + self.config.startup_seconds, self._fail_unplaced, job)
            return
        if phone.job is not None or phone.waiting:
            self._counters["double_bookings"] += 1
        if phone.job is None and not phone.cleaning and not phone.waiting:
            self._place(job, phone)
        else:
            phone.waiting.append(job)

    def _launch_selector(self, job: _Job) -> None:
        candidates = [p for kind, idle in self._idle.items() if _selects(job.selector, kind) for p in idle.values()]
        if candidates:
            self._place_selected(job, self._pick_rng.choice(candidates))
        else:
            self._selector_waiting.append(job)

    def _place_selected(self, job: _Job, phone: _Phone) -> None:
        """The cloud picked this phone for a selector job."""
        if phone.udid in self._quarantined:
            self._counters["quarantined_launches"] += 1
        self._place(job, phone)

    def _place(self, job: _Job, phone: _Phone) -> None:
        """The job takes the phone and starts its setup; the device list goes on saying idle for a while."""
        self._idle[phone.kind].pop(phone.udid, None)
        phone.job = job
        self._occupancy.append((self._now, 1))
        phone.listed_idle_until = self._now + self.config.list_lag_seconds
        job.phone = phone
        self._set_phase(job, "starting")
        self._at(self._now + self.config.startup_seconds, self._ready, job)

    # --- events -----------------------------------------------------------------------------------------------

    def _advance(self, endpoint: str) -> float:
        """Process every event due up to the clock's now; count the call; return the simulation's time."""
        if endpoint:
            self._calls[endpoint] += 1
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
            queue = self._queues[queue_id] = _Queue(queue_id, spec.per_hour, random.Random(f"{self.config.seed}/q/{queue_id}"))
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
        while queue.pending and queue.workers:
            job = queue.workers.popleft()
            if job.phase == "waiting":
                self._claim(job, queue)

    def _ready(self, job: _Job) -> None:
        """Setup is over: the worker polls the queue (a quarantined worker never gets a task)."""
        self._set_phase(job, "waiting")
        queue = self._queues[job.queue]
        assert job.phone is not None
        if job.phone.udid not in self._quarantined:
            if queue.pending:
                self._claim(job, queue)
                return
            queue.workers.append(job)
        self._at(self._now + self.config.idle_timeout_seconds, self._give_up, job)

    def _claim(self, job: _Job, queue: _Queue) -> None:
        task = queue.pending.popleft()
        self._tasks[task][2] = self._now
        queue.claimed += 1
        job.task = task
        self._set_phase(job, "running")
        self._at(self._now + self.config.task_seconds, self._complete, job)

    def _give_up(self, job: _Job) -> None:
        if job.phase == "waiting":
            self._end(job, "wasted")

    def _complete(self, job: _Job) -> None:
        self._queues[job.queue].claimed -= 1
        self._end(job, "completed")

    def _fail_unplaced(self, job: _Job) -> None:
        self._end(job, "failed")

    def _end(self, job: _Job, outcome: str) -> None:
        job.outcome = outcome
        job.ended_at = self._now
        self._set_phase(job, "ended")
        self._counters[outcome] += 1
        phone = job.phone
        if phone is None or phone.job is not job:
            return
        phone.job = None
        self._occupancy.append((self._now, -1))
        phone.cleaning = True
        self._at(self._now + self.config.cleanup_seconds, self._release, phone)

    def _release(self, phone: _Phone) -> None:
        """Cleanup is over: the next job queued for the phone takes it, else a selector job, else it is idle."""
        phone.cleaning = False
        if phone.waiting:
            self._place(phone.waiting.popleft(), phone)
            return
        for i, job in enumerate(self._selector_waiting):
            if _selects(job.selector, phone.kind):
                del self._selector_waiting[i]
                self._place_selected(job, phone)
                return
        self._idle[phone.kind][phone.udid] = phone

    # --- reporting --------------------------------------------------------------------------------------------

    def _set_phase(self, job: _Job, phase: str) -> None:
        job.phase = phase
        if job.index >= 0:
            self._ours[job.index] = self._remote(job)

    def _remote(self, job: _Job) -> RemoteJob:
        udid = job.labels[2] if len(job.labels) > 2 else ""
        if not udid and job.phone is not None:
            udid = job.phone.udid
        pool = job.labels[1] if len(job.labels) > 1 else job.pool
        return RemoteJob(job.id, pool, udid, job.state, job.created_at, job.ended_at, job.outcome)
