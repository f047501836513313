"""A simulated cloud job's phases, and a phone as the device list shows it.

A job goes through the phases LambdaTest's jobs go through (the reference notes and DESIGN.md's launch
lifecycle)::

    BLOCKED -> INITIATED -> PRE -> POLLING -> TASK -> POST -> ENDED (completed)
                                      \\-> (idle timeout, or quarantined) -> POST -> ENDED (wasted)

- ``BLOCKED``: the phone it is pinned to is taken (or, for a job whose cloud picks the phone, no phone matching
  its selector, or no member of its group, is idle). The job waits and keeps its place: the phone goes to it
  before anyone else once it frees.
- ``INITIATED``: the job holds the phone and the cloud prepares it; the provider reports the job *starting*.
- ``PRE`` to ``POST``: the provider reports the job *running*. ``PRE`` installs the worker (minutes): the
  worker has claimed nothing yet. ``POLLING``: the worker asks the queue for a task; ``TASK``: it runs one;
  ``POST`` reboots the phone, whatever happened before.
- ``ENDED``: ``completed`` (its worker ran a task), ``wasted`` (it found none and idled out: for a warm
  launch, an idle-out, counted apart) or ``failed``
  (the cloud never got the phone to start it). The phone then cleans up before it is idle again.

The :class:`~provisioner.sim.cloud.Cloud` moves jobs from phase to phase on the :class:`~provisioner.sim.timeline.Timeline`.
"""

from __future__ import annotations

import enum
from collections import deque

from provisioner import JobState, LaunchRequest, Phone, PhoneState, RemoteJob


class Phase(str, enum.Enum):
    BLOCKED = "blocked"
    INITIATED = "initiated"
    PRE = "pre"
    POLLING = "polling"
    TASK = "task"
    POST = "post"
    ENDED = "ended"

    @property
    def state(self) -> JobState:
        """What the provider's job list says of a job in this phase."""
        if self in (Phase.BLOCKED, Phase.INITIATED):
            return JobState.STARTING
        return JobState.ENDED if self is Phase.ENDED else JobState.RUNNING


RAW_STATES = {"active": PhoneState.IDLE, "faulty": PhoneState.UNAVAILABLE}  # others (initiated, busy, cleanup): busy


class Job:
    __slots__ = (
        "id", "pool", "queue", "labels", "selector", "members", "phone", "phase", "created_at", "ended_at", "outcome",
        "task", "index", "kind", "idle_timeout", "polled_at",
    )

    def __init__(self, job_id: str, request: LaunchRequest, created_at: float, idle_timeout: float) -> None:
        self.id = job_id
        self.pool = request.pool.name
        self.queue = request.pool.queue
        self.labels = tuple(request.labels)
        self.selector = request.pool.selector
        # a group launch (it names no phone): the cloud picks one of the group's members; None: pinned or selector
        self.members = request.pool.udids if request.pool.targeting == "group" and not request.udid else None
        self.phone: CloudPhone | None = None
        self.phase = Phase.BLOCKED
        self.created_at = created_at
        self.ended_at: float | None = None
        self.outcome = ""  # once ended: completed (its worker ran a task), wasted (it found none) or failed
        self.task = -1  # index of the task its worker claimed
        self.index = -1  # in Fleet._ours when the job is ours (first label is the job tag)
        self.kind = request.kind  # demand | warm: a warm job that finds no task idles out (not wasted)
        # the worker's idleTimeoutSecs: the pool's `idle_timeout` when it sets one, else the fleet's
        self.idle_timeout = float(request.pool.idle_timeout) if request.pool.idle_timeout is not None else idle_timeout
        self.polled_at: float | None = None  # when its worker started waiting for a task

    @property
    def state(self) -> JobState:
        return self.phase.state

    def remote(self) -> RemoteJob:
        """The job as the provider's job list reports it (pool and phone from its labels; a job the cloud placed
        names its phone, a group job only once it runs: Bitbar's run names no device while it waits, facts.md)."""
        udid = self.labels[2] if len(self.labels) > 2 else ""
        if not udid and self.phone is not None and (self.members is None or self.phase.state is not JobState.STARTING):
            udid = self.phone.udid
        pool = self.labels[1] if len(self.labels) > 1 else self.pool
        return RemoteJob(self.id, pool, udid, self.state, self.created_at, self.ended_at, self.outcome)


class CloudPhone:
    __slots__ = ("udid", "model", "os_version", "job", "blocked", "cleaning", "listed_idle_until", "faulty", "views")

    def __init__(self, udid: str, model: str, os_version: str, faulty: bool) -> None:
        self.udid = udid
        self.model = model
        self.os_version = os_version
        self.job: Job | None = None  # the job holding the phone (initiated to post)
        self.blocked: deque[Job] = deque()  # jobs pinned to it, blocked until it frees, first come first served
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
            return "initiated" if self.job.phase is Phase.INITIATED else "busy"
        return "cleanup" if self.cleaning else "active"
