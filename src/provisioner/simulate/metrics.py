"""Figures of one run, computed from the fleet's own books (what really happened), not from what the policy
believed. Times are seconds of fleet time since the run started."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import median

from .runner import RunResult

READS = ("counts", "workers", "phones", "jobs")


@dataclass
class Metrics:
    policy: str
    scenario: str
    seed: int
    duration: float
    cycles: int
    tasks: int
    claimed: int
    unclaimed: int  # still pending when the run ended (their wait counts up to the end)
    wait_p50: float
    wait_p95: float
    wait_max: float
    burst_tasks: int  # tasks present at the start
    burst_claimed_in: float | None  # when the last of them was claimed (None: some never were)
    full_utilization_in: float | None  # when phones holding a job first reached min(usable phones, burst tasks)
    launches: int
    launch_failures: int  # submissions that failed or timed out (a timed-out one may have reached the cloud)
    wasted: int  # demand launches whose job found no task and idled out
    idle_outs: int  # warm launches whose job found no task: the price of warm workers
    waiting_minutes: float  # phone-minutes workers spent waiting for a task (polling the queue)
    double_bookings: int  # launches on a phone already taken
    quarantined_launches: int
    faulty_launches: int
    no_free_phone: int  # launches naming no phone (the cloud picks) that found no free phone and waited for one
    # cycles at which a group pool had more launches starting than members, those just planned included (None: no
    # group pool, or the baseline, whose cycles are not seen)
    overbooked_cycles: int | None
    usable_phones: int  # in some pool, neither faulty nor quarantined
    utilization: float  # share of usable phone-time spent running tasks
    calls_per_cycle: float  # remote calls (reads and launches) per cycle
    calls_per_hour: float  # the same per hour of fleet time (cycles differ in length between policies)
    unknown_cycles: int  # cycles in which some read failed
    launches_on_unknown: int  # launches planned by a cycle in which some read failed
    recovery: list[float] = field(default_factory=list)  # per fault window: first clean cycle after its end
    crashes: int = 0
    plan_ms_median: float | None = None  # wall time of the planner per cycle (provisioner only)
    plan_ms_p95: float | None = None
    observe_ms_median: float | None = None  # reads + reconcile + ledger per cycle (provisioner only)
    wait_by_queue: dict[str, list[float]] = field(default_factory=dict)  # queue -> [p50, p95, max], few queues

    def to_dict(self) -> dict:
        """As plain JSON values ("never" recovering is null)."""
        out = asdict(self)
        out["recovery"] = [None if math.isinf(r) else r for r in self.recovery]
        return out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def measure(run: RunResult, per_queue_limit: int = 4) -> Metrics:
    s, start = run.stats, run.started_at
    end = s["now"]
    tasks = s["tasks"]
    waits = [(claimed if claimed is not None else end) - created for _, created, claimed in tasks]
    burst = [t for t in tasks if t[1] == start]
    usable = _usable(run)
    cycles = run.cycles
    unknown = [c for c in cycles if c.unknown or _faulted(run, c.started_at, c.observed_at)]
    plan_ms = [c.plan_seconds * 1000 for c in cycles]
    return Metrics(
        policy=run.policy, scenario=run.scenario.name, seed=run.seed, duration=end - start, cycles=len(cycles),
        tasks=len(tasks), claimed=s["tasks_claimed"], unclaimed=len(tasks) - s["tasks_claimed"],
        wait_p50=percentile(waits, 50), wait_p95=percentile(waits, 95), wait_max=max(waits, default=0.0),
        burst_tasks=len(burst),
        burst_claimed_in=max(t[2] - start for t in burst) if burst and all(t[2] is not None for t in burst) else None,
        full_utilization_in=_full_at(run, min(usable, len(burst))),
        launches=s["launches"], launch_failures=s["launch_failures"] + s["faults"].get("launch", 0), wasted=s["wasted"],
        idle_outs=s["idle_outs"], waiting_minutes=s["waiting_seconds"] / 60,
        double_bookings=s["double_bookings"], quarantined_launches=s["quarantined_launches"],
        faulty_launches=s["faulty_launches"], no_free_phone=s["no_free_phone"],
        overbooked_cycles=_overbooked(run), usable_phones=usable, utilization=_utilization(run, usable),
        calls_per_cycle=sum(s["calls"].values()) / len(cycles) if cycles else 0.0,
        calls_per_hour=sum(s["calls"].values()) * 3600 / (end - start) if end > start else 0.0,
        unknown_cycles=len(unknown), launches_on_unknown=sum(c.launches for c in unknown),
        recovery=_recovery(run), crashes=run.crashes,
        plan_ms_median=median(plan_ms) if run.policy != "baseline" and plan_ms else None,
        plan_ms_p95=percentile(plan_ms, 95) if run.policy != "baseline" and plan_ms else None,
        observe_ms_median=median(c.observe_seconds * 1000 for c in cycles) if run.policy != "baseline" and cycles else None,
        wait_by_queue=_by_queue(tasks, end, per_queue_limit),
    )


def _overbooked(run: RunResult) -> int | None:
    """Cycles at which a group pool had more launches starting (placed or not, with those it just planned) than it
    has members."""
    groups = [p for p in run.pools if p.targeting == "group"]
    if not groups or not run.series:
        return None
    return sum(1 for p in groups for point in run.series.get(p.name, ())
               if point.starting + point.launches > len(p.udids))


def _usable(run: RunResult) -> int:
    bad = set(run.fleet_config.faulty) | set(run.fleet_config.quarantined)
    return sum(1 for phone in run.catalog if phone.udid not in bad and any(p.owns(phone) for p in run.pools))


def _running_intervals(run: RunResult) -> list[tuple[float, float]]:
    length, end = run.fleet_config.task_seconds, run.stats["now"]
    return [(c, min(c + length, end)) for _, _, c in run.stats["tasks"] if c is not None]


def _full_at(run: RunResult, target: int) -> float | None:
    """When the number of phones busy with a job (starting or running it) first reached ``target``."""
    if target <= 0:
        return None
    events = sorted(run.stats["occupancy"], key=lambda e: (e[0], e[1]))
    running = 0
    for when, step in events:
        running += step
        if running >= target:
            return when - run.started_at
    return None


def _utilization(run: RunResult, usable: int) -> float:
    elapsed = run.stats["now"] - run.started_at
    if usable == 0 or elapsed <= 0:
        return 0.0
    return sum(b - a for a, b in _running_intervals(run)) / (usable * elapsed)


def _faulted(run: RunResult, begin: float, end: float) -> bool:
    return any(begin <= when <= end and endpoint in READS for when, endpoint, _ in run.fault_log)


def _recovery(run: RunResult) -> list[float]:
    """Per fault window on reads: from its end to the start of the first cycle that read everything."""
    out = []
    for fault in run.fleet_config.faults:
        if not set(fault.endpoints) & set(READS):
            continue
        ended = run.started_at + fault.end
        clean = next(
            (c.started_at for c in run.cycles
             if c.started_at >= ended and not c.unknown and not _faulted(run, c.started_at, c.observed_at)),
            None,
        )
        out.append(clean - ended if clean is not None else math.inf)
    return out


def _by_queue(tasks: list[tuple], end: float, limit: int) -> dict[str, list[float]]:
    waits: dict[str, list[float]] = defaultdict(list)
    for queue, created, claimed in tasks:
        waits[queue].append((claimed if claimed is not None else end) - created)
    if len(waits) > limit:
        return {}
    return {q: [percentile(w, 50), percentile(w, 95), max(w)] for q, w in sorted(waits.items())}
