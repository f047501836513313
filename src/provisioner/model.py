"""The data that flows through one cycle: observations in, a plan out.

Everything here is a small frozen value; plugins build them, the planner reads them, and nothing
mutates them. Times are seconds since the epoch (float), as returned by the injected clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PhoneState(str, enum.Enum):
    """What the device provider says of a phone, mapped onto the three states the planner needs."""

    IDLE = "idle"  # a job may be started on it now
    BUSY = "busy"  # taken: running a job, starting one, or cleaning up after one
    UNAVAILABLE = "unavailable"  # faulty, offline, or a state the provider does not know


@dataclass(frozen=True, slots=True)
class Phone:
    """One phone of a device provider."""

    udid: str
    model: str = ""
    os_version: str = ""
    state: PhoneState = PhoneState.IDLE
    raw_state: str = ""  # the provider's own word for the state, for logs


class JobState(str, enum.Enum):
    """A provider's job, as far as the host cares."""

    STARTING = "starting"  # the cloud knows it, the phone is not running it yet
    RUNNING = "running"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class RemoteJob:
    """A job the device provider reports, found to be one of ours by its labels.

    ``pool`` and ``udid`` come from the labels the launcher attached (``LaunchRequest.labels``): ``udid`` is empty
    for a job whose launch named no phone and that has not been placed (or whose cloud never says where it runs).
    ``outcome`` is the provider's own final status (``completed``, ``failed``, ...) once ended.

    What the host matches on: ``job_id`` (the id ``launch()`` returned) follows a launch. A launch left
    ``submitting`` by a process that died before it recorded the id is adopted by a job that is not ended, of the
    same ``pool``, of the same ``udid`` when the launch names one, created at or after the launch was written less
    ``adopt_clock_skew_seconds``, and held by no other launch (the newest such job). So ``created_at`` is the
    cloud's creation time (seconds since the epoch), ``ended_at`` is set for every ``ENDED`` job, and ``state``
    moves only forward: ``STARTING`` -> ``RUNNING`` -> ``ENDED``.
    """

    job_id: str
    pool: str
    udid: str
    state: JobState
    created_at: float
    ended_at: float | None = None
    outcome: str = ""


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Tasks waiting (``pending``, an approximate upper bound) and being worked on (``claimed``)."""

    pending: int
    claimed: int


@dataclass(frozen=True, slots=True)
class Worker:
    """What the queue source records of one worker, as Taskcluster's queue ``listWorkers`` gives it.

    ``worker_id`` is the phone's UDID for workers our launches start (the job's worker runs as
    ``<group>/<UDID>``). ``latest_task`` names the most recent task it claimed (``<taskId>/<runId>``, "" when
    none is recorded); ``first_claim`` is when it first claimed one (None: never). The host decides that a
    launch's worker has claimed a task when ``latest_task`` differs from what it was when the launch was
    planned, or ``first_claim`` is after the launch was submitted. ``quarantined_until``: the worker takes no
    task before then (None, or a time in the past: not quarantined).
    """

    worker_id: str
    latest_task: str = ""
    first_claim: float | None = None
    quarantined_until: float | None = None
    worker_group: str = ""


@dataclass(frozen=True)
class Selector:
    """Phones named by model and/or OS version rather than by UDID. Empty fields match anything."""

    model: str = ""
    os_version: str = ""

    def matches(self, phone: Phone) -> bool:
        return (not self.model or phone.model == self.model) and (
            not self.os_version or phone.os_version == self.os_version
        )

    def __str__(self) -> str:
        return f"{self.model or '*'}/{self.os_version or '*'}"


GROUP_SHOWN = 3  # a group's members named in a log line, at most


@dataclass(frozen=True)
class Pool:
    """Binds one task queue to a set of phones and a launch recipe."""

    name: str
    queue: str  # the queue source's id of the queue, e.g. ``proj-autophone/gecko-t-lambda-perf-a55``
    queue_source: str
    device_provider: str
    launcher: str
    udids: tuple[str, ...] = ()  # phones by UDID (with ``targeting = "group"``: the group's members); empty when a
    # selector names them
    selector: Selector | None = None
    # "pinned": we pick the phone; "selector": the cloud picks one matching the selector; "group": the cloud picks
    # one of the group's members (``udids``)
    targeting: str = "pinned"
    priority: int = 0
    enabled: bool = True
    max_starting: int | None = None  # cap on this pool's launches still starting
    launch: dict = field(default_factory=dict, compare=False, hash=False)  # launcher's own keys
    warm: int | str = 0  # workers to keep started and waiting beyond the pending tasks, or "auto" (see warm.py)
    warm_max: int | None = None  # cap on the warm workers
    idle_timeout: int | None = None  # seconds a worker waits for a task before it exits (None: launcher's default)

    @property
    def cloud_picks(self) -> bool:
        """Whether the cloud picks the phone: the pool's launches name none (``LaunchRequest.udid`` is empty)."""
        return self.targeting in ("selector", "group")

    def target(self, udid: str = "") -> str:
        """What a launch aims at, for logs and dry runs: the phone, else the selector, else the group's members."""
        if udid or not self.cloud_picks:
            return udid
        if self.targeting == "selector":
            return str(self.selector)
        shown = ", ".join(self.udids[:GROUP_SHOWN])
        more = f" and {len(self.udids) - GROUP_SHOWN} more" if len(self.udids) > GROUP_SHOWN else ""
        return f"group of {len(self.udids)} ({shown}{more})"

    def owns(self, phone: Phone) -> bool:
        if self.udids:
            return phone.udid in self.udids
        return self.selector is not None and self.selector.matches(phone)


@dataclass(frozen=True)
class Limits:
    """Caps that hold across all pools."""

    max_launches_per_cycle: int = 60
    max_starting: int = 200  # global cap on launches still starting
    max_startup_seconds: float = 900.0  # a launch not seen running by then stops counting as starting


class LaunchState(str, enum.Enum):
    """The lifecycle of a launch, as the ledger records it."""

    QUEUED = "queued"  # planned, waiting for its turn to be submitted
    SUBMITTING = "submitting"  # the launcher is being called
    STARTING = "starting"  # submitted; the cloud knows it or will soon
    RUNNING = "running"
    ENDED = "ended"  # the job ended (see ``outcome``), or was never seen before the startup limit
    FAILED = "failed"  # the submission failed
    CANCELLED = "cancelled"  # planned but never submitted (stopped, or lost to a restart)

    @property
    def in_flight(self) -> bool:
        return self in (LaunchState.QUEUED, LaunchState.SUBMITTING, LaunchState.STARTING, LaunchState.RUNNING)

    @property
    def starting(self) -> bool:
        return self in (LaunchState.QUEUED, LaunchState.SUBMITTING, LaunchState.STARTING)


@dataclass(frozen=True, slots=True)
class Launch:
    """One job started (or to be started) on one phone for one pool."""

    id: str
    pool: str
    udid: str  # empty for a launch whose cloud picks the phone (selector, group), until the phone is known
    state: LaunchState
    submitted_at: float
    job_id: str = ""
    updated_at: float = 0.0
    outcome: str = ""
    detail: str = ""
    ran_at: float | None = None  # when its job was first seen running
    claimed_at: float | None = None  # when the host saw its worker claim a task
    sent_at: float | None = None  # when the launcher returned it submitted (a batch's last may be minutes late)
    # The worker's latest task when the launch was planned (or when its phone became known): a change means a
    # claim. "" when the worker had none; None when not known (no phone named yet, or the queue unread).
    claim_baseline: str | None = None
    kind: str = "demand"  # demand | warm (``PlannedLaunch.kind``)


@dataclass(frozen=True)
class LaunchRequest:
    """What a job launcher is asked to start.

    ``labels`` is ``(job_tag, pool name, udid)``: the job must carry them so that the pool's device provider can
    report it back (``RemoteJob.pool``, ``RemoteJob.udid``). ``udid`` (and the last label) is empty when the cloud
    picks the phone (``pool.cloud_picks``): the launch names no phone and the cloud picks one matching
    ``pool.selector`` (``targeting = "selector"``) or one of the group's members, ``pool.udids``
    (``targeting = "group"``).
    ``pool.launch`` holds the pool's ``launch`` table, validated against the launcher's ``pool_options``.
    ``dry_run`` is set on the requests a dry run hands to ``render()``.
    """

    launch_id: str
    pool: Pool
    udid: str  # the phone to pin the job to; empty when the cloud picks it (``pool.cloud_picks``)
    labels: tuple[str, ...]  # to attach to the job, so that the provider's job list names pool and phone
    dry_run: bool = False
    kind: str = "demand"  # demand: for a pending task; warm: started ahead of demand (it may idle out)


@dataclass(frozen=True)
class LaunchResult:
    """How a submission went. ``detail`` must never hold a secret."""

    ok: bool
    job_id: str = ""
    detail: str = ""
    url: str = ""


@dataclass(frozen=True)
class PlannedLaunch:
    pool: str
    udid: str  # empty when the cloud picks the phone (``Pool.cloud_picks``: selector or group)
    kind: str = "demand"  # demand: for a pending task; warm: a worker started ahead of demand


@dataclass(frozen=True)
class PoolDecision:
    """What the planner decided for one pool, and why, in a few words."""

    pool: str
    launches: int
    reason: str
    pending: int | None = None
    claimed: int | None = None
    idle: int | None = 0  # None: unknown this cycle
    busy: int | None = 0
    starting: int = 0
    quarantined: int | None = 0
    held: int | None = 0
    warm: int | None = 0  # workers started and not claimed beyond the pending tasks (None: pending unknown)
    warm_target: int = 0  # how many the loop asked the planner to keep
    warm_launches: int = 0  # of ``launches``, how many are warm


@dataclass(frozen=True)
class Plan:
    launches: tuple[PlannedLaunch, ...]
    decisions: tuple[PoolDecision, ...]
