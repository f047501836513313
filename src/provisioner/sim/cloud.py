"""The device-cloud side of the simulated fleet: phones, the jobs on them, and the device list.

Owns every phone (idle, taken, cleaning, blocked on), every job and its phase (see :mod:`.job`), where the cloud
places a job (pinned, or picked for a selector or among a group's members), the device list as ``phones()`` shows
it (lagging), our jobs as the job list shows them, and which phone a job held when (occupancy). May not touch: the
tasks and the queues' records (a worker's poll asks :class:`~.queues.Queues`), the remote calls' faults.
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections import Counter, deque
from collections.abc import Sequence

from provisioner import LaunchRequest, LaunchResult, Phone, Pool, RemoteJob, Selector

from .config import FleetConfig
from .job import CloudPhone, Job, Phase
from .queues import Queues
from .timeline import Timeline

JOB_URL = "https://sim.invalid/hyperexecute/task?jobId={job_id}"


def _selects(selector: Selector | None, kind: tuple[str, str]) -> bool:
    if selector is None:
        return True
    return (not selector.model or selector.model == kind[0]) and (
        not selector.os_version or str(selector.os_version) == kind[1]
    )


def _may_take(job: Job, phone: CloudPhone) -> bool:
    """Whether the cloud may pick this phone for a job that names none: a member of its group, or a match of its
    selector."""
    return phone.udid in job.members if job.members is not None else _selects(job.selector, phone.kind)


class Cloud:
    """``submit(request)`` places a job; events move it on. ``counters`` is shared with the fleet's ``stats``."""

    def __init__(self, config: FleetConfig, job_tag: str, time: Timeline, queues: Queues, counters: Counter[str]) -> None:
        self.config, self.job_tag, self._time, self._queues, self._counters = config, job_tag, time, queues, counters
        queues.on_claim = self._claimed
        seed = config.seed
        self._pick_rng = random.Random(f"{seed}/pick")
        self._id_rng = random.Random(f"{seed}/ids")
        self.occupancy: list[tuple[float, int]] = []  # (when, +1/-1): a job took or left a phone
        faulty = set(config.faulty)
        self.phones: dict[str, CloudPhone] = {}
        for i, udid in enumerate(config.udids()):
            model = config.models[i % len(config.models)]
            os_version = config.os_versions[i % len(config.os_versions)]
            self.phones[udid] = CloudPhone(udid, model, os_version, udid in faulty)
        # idle phones by (model, os_version), each an insertion-ordered dict used as an ordered set
        self._idle: dict[tuple[str, str], dict[str, CloudPhone]] = {}
        for phone in self.phones.values():
            self._idle.setdefault(phone.kind, {})
            if not phone.faulty:
                self._idle[phone.kind][phone.udid] = phone
        # the device list as phones() gives it, in the cloud's fixed order: each entry is replaced when it changes
        self.listed = {udid: phone.view(time.now) for udid, phone in self.phones.items()}
        self._picks_blocked: deque[Job] = deque()  # jobs naming no phone that no idle phone could take yet
        self._quarantined = frozenset(config.quarantined)
        self.jobs: list[Job] = []  # in creation order
        # our jobs, as the provider reports them: a snapshot refreshed on each change, and created_at for bisect
        self._ours: list[RemoteJob] = []
        self._our_times: list[float] = []

    def our_jobs(self, since: float) -> list[RemoteJob]:
        """Our jobs (first label is the job tag) created at or after ``since``, oldest first."""
        return self._ours[bisect.bisect_left(self._our_times, since):]

    def submit(self, request: LaunchRequest) -> LaunchResult:
        """The cloud takes the job: it waits for its phone, or the cloud picks one for a launch naming none."""
        now = self._time.now
        phone = self.phones.get(request.udid) if request.udid else None
        job = Job(str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4)), request, now,
                  self.config.idle_timeout_seconds)
        self.jobs.append(job)
        if job.labels[:1] == (self.job_tag,):
            job.index = len(self._ours)
            self._ours.append(job.remote())
            self._our_times.append(now)
        self._queues.queue(job.queue)
        self._counters["launches"] += 1
        if phone is not None:
            self._launch_pinned(job, phone)
        else:
            self._launch_picked(job)
        return LaunchResult(ok=True, job_id=job.id, url=JOB_URL.format(job_id=job.id), detail="submitted")

    def catalog(self) -> list[Phone]:
        """Every phone with its model and OS version, as all idle."""
        return [Phone(p.udid, p.model, p.os_version) for p in self.phones.values()]

    def check(self, pools: Sequence[Pool]) -> list[str]:
        """Problems of pools with this cloud's phones: UDIDs it does not have, selectors matching nothing."""
        problems = []
        kinds = list(self._idle)
        for pool in pools:
            for udid in pool.udids:
                if udid not in self.phones:
                    problems.append(f"pool {pool.name}: phone {udid} is not in the simulated fleet")
            if not pool.udids and not any(_selects(pool.selector, kind) for kind in kinds):
                problems.append(f"pool {pool.name}: selector {pool.selector} matches no phone of the simulated fleet")
        return problems

    # --- placing a job ----------------------------------------------------------------------------------------

    def _launch_pinned(self, job: Job, phone: CloudPhone) -> None:
        if phone.udid in self._quarantined:
            self._counters["quarantined_launches"] += 1
        if phone.faulty:
            # the cloud never gets the phone to start the job: it fails once its setup time is over
            self._counters["faulty_launches"] += 1
            self._time.at(self._time.now + self.config.startup_seconds, self._fail_unplaced, job)
            return
        if phone.job is not None or phone.blocked:
            self._counters["double_bookings"] += 1
        if phone.job is None and not phone.cleaning and not phone.blocked:
            self._place(job, phone)
        else:
            phone.blocked.append(job)  # blocked: it gets the phone once the jobs before it are done

    def _launch_picked(self, job: Job) -> None:
        """The cloud picks any idle phone the job may take (even one the host would avoid, quarantined say), else
        the job waits for one (counted: a launch the host made with no free phone for it)."""
        if job.members is not None:
            candidates = [p for u in job.members if (p := self.phones.get(u)) is not None and u in self._idle[p.kind]]
        else:
            candidates = [p for kind, idle in self._idle.items() if _selects(job.selector, kind) for p in idle.values()]
        if candidates:
            self._place_picked(job, self._pick_rng.choice(candidates))
        else:
            self._counters["no_free_phone"] += 1
            self._picks_blocked.append(job)

    def _place_picked(self, job: Job, phone: CloudPhone) -> None:
        """The cloud picked this phone for a job that named none."""
        if phone.udid in self._quarantined:
            self._counters["quarantined_launches"] += 1
        self._place(job, phone)

    def _place(self, job: Job, phone: CloudPhone) -> None:
        """The job takes the phone, ``initiated``; the device list goes on saying idle for a while."""
        now = self._time.now
        self._idle[phone.kind].pop(phone.udid, None)
        phone.job = job
        self.occupancy.append((now, 1))
        phone.listed_idle_until = now + self.config.list_lag_seconds
        self._time.at(phone.listed_idle_until, self._relist, phone)
        job.phone = phone
        self._set_phase(job, Phase.INITIATED)
        self._time.at(now + self.config.startup_seconds, self._run_pre, job)

    # --- a job's phases (events) ------------------------------------------------------------------------------

    def _run_pre(self, job: Job) -> None:
        """The cloud says ``running``: ``pre`` installs the worker, which claims nothing yet."""
        self._set_phase(job, Phase.PRE)
        self._time.at(self._time.now + self.config.pre_seconds, self._poll, job)

    def _poll(self, job: Job) -> None:
        """The worker asks its queue for a task until one comes or it idles out (a quarantined one gets none)."""
        self._set_phase(job, Phase.POLLING)
        job.polled_at = self._time.now
        queue = self._queues.queue(job.queue)
        assert job.phone is not None
        if job.phone.udid not in self._quarantined:
            if queue.pending:
                self._queues.claim(job, queue)
                return
            queue.polling.append(job)
        self._time.at(self._time.now + job.idle_timeout, self._idle_out, job)

    def _claimed(self, job: Job) -> None:
        """The job's worker claimed a task (see ``Queues.claim``): it runs it."""
        self._waited(job)
        self._set_phase(job, Phase.TASK)
        self._time.at(self._time.now + self.config.task_seconds, self._task_done, job)

    def _idle_out(self, job: Job) -> None:
        if job.phase is Phase.POLLING:
            self._waited(job)
            self._run_post(job)

    def _waited(self, job: Job) -> None:
        if job.polled_at is not None:
            self._counters["waiting_seconds"] += self._time.now - job.polled_at

    def _task_done(self, job: Job) -> None:
        self._queues.task_done(job)
        self._run_post(job)

    def _run_post(self, job: Job) -> None:
        """The worker exited: ``post`` reboots the phone, then the job ends."""
        self._set_phase(job, Phase.POST)
        self._time.at(self._time.now + self.config.post_seconds, self._finish, job)

    def _finish(self, job: Job) -> None:
        self._end(job, "completed" if job.task >= 0 else "wasted")

    def _fail_unplaced(self, job: Job) -> None:
        self._end(job, "failed")

    def _end(self, job: Job, outcome: str) -> None:
        now = self._time.now
        job.outcome = outcome
        job.ended_at = now
        self._set_phase(job, Phase.ENDED)
        self._counters["idle_outs" if outcome == "wasted" and job.kind == "warm" else outcome] += 1
        phone = job.phone
        if phone is None or phone.job is not job:
            return
        phone.job = None
        self.occupancy.append((now, -1))
        phone.cleaning = True
        self._relist(phone)
        self._time.at(now + self.config.cleanup_seconds, self._release, phone)

    def _release(self, phone: CloudPhone) -> None:
        """Cleanup is over: the first job blocked on the phone takes it, else the first job naming no phone that may
        take it, else it is idle."""
        phone.cleaning = False
        self._relist(phone)
        if phone.blocked:
            self._place(phone.blocked.popleft(), phone)
            return
        for i, job in enumerate(self._picks_blocked):
            if _may_take(job, phone):
                del self._picks_blocked[i]
                self._place_picked(job, phone)
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
        self.listed[phone.udid] = phone.view(self._time.now)
