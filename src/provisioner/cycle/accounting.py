"""Accounting: each launch from the ledger to its job in the cloud to its worker's claim.

Owns what follows a launch once it is written: matching the providers' job lists to the ledger's launches in
flight (a launch's state, job id and phone), adopting the job of a launch whose submission a crash cut short,
seeing its worker's claim in the queue's record, ending it, and saying what each launch in flight covers for the
planner (a pending task, until its worker claims one; the learned launch-to-claim time where no claim can be
seen). Also the live jobs with our tag that no launch knows ("strangers"). May not touch: the remote services
(it reads only what ``observe`` handed over), the plan, the submitter; it writes the ledger only through
``_record`` (a dry run writes nothing).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from loguru import logger

from ..clock import Anchors, Clock, monotonic_at
from ..config import Settings
from ..ledger import Ledger
from ..model import JobState, Launch, LaunchState, Phone, PhoneState, Pool, RemoteJob, Worker
from ..planner import InFlight
from ..warm import WARM, demand_claim_seconds, idle_timeout
from .hooks import Hooks

ESTIMATE_REFRESH = 600.0  # seconds between two readings of the learned launch-to-claim times
ESTIMATE_SAMPLES = 50  # the latest claims of a pool that make its estimate
# A job in one of these states, its launch in the other of the pair: nothing to record. (Compared by identity: an
# enum's hash is a Python call, and this is asked of every launch in flight every cycle.)
_J_STARTING, _J_RUNNING, _L_STARTING, _L_RUNNING = (
    JobState.STARTING, JobState.RUNNING, LaunchState.STARTING, LaunchState.RUNNING)


class Accounting:
    """``reconcile`` once a cycle (inside the ledger's batch); ``claim_estimate`` and ``take_claims`` for the warm
    targets; ``launching_since`` is set by the loop when it takes over (jobs created later are never adopted)."""

    def __init__(
        self, settings: Settings, pools: Mapping[str, Pool], ledger: Ledger | None, hooks: Hooks, dry_run: bool,
        being_submitted: Callable[[], set[str]], now: float, clock: Clock, sent: Anchors,
        wall_of: Callable[[float], float] | None = None,
    ) -> None:
        self.settings, self.pools, self.ledger, self.hooks, self.dry_run = settings, pools, ledger, hooks, dry_run
        self.clock = clock
        # launch id -> the monotonic time it was sent: marked by the submitter, else from its age when first read
        self.sent = sent
        self._wall_of = wall_of  # a monotonic time as a wall time, as the clocks ran at the first observation
        self._being_submitted = being_submitted  # ids of the launches this process is submitting now
        self.launching_since = now  # jobs created later are never adopted (see _adopt)
        self.strangers = 0  # live jobs with our tag that no launch of ours knows, last cycle
        self._strangers_warned: set[str] = set()
        self._idle_latest: dict[tuple[str, str], str] = {}  # (queue, worker) -> latest task while idle
        # queues of pools whose cloud picks the phone (selector, group): only their launches learn their phone late
        # (see note_idle_workers)
        self._picked_queues = {p.queue for p in pools.values() if p.cloud_picks}
        self._estimates: tuple[float, dict[str, float]] | None = None
        self._claims_seen: Counter[str] = Counter()  # per pool, claims seen since the last observation

    def take_claims(self) -> Counter[str]:
        """The claims seen per pool since the last call (the warm targets count them as arrivals)."""
        claims, self._claims_seen = self._claims_seen, Counter()
        return claims

    def reconcile(
        self, jobs: Mapping[str, list[RemoteJob] | None], workers: Mapping[str, Sequence[Worker] | None], now: float,
        mono: float | None = None,
    ) -> list[InFlight]:
        """Bring the ledger up to date with the providers' job lists and the queues' worker records; return
        everything in flight, each launch covering a pending task until its worker has claimed one. ``now`` is
        the wall time (recorded; compared with the jobs' ``created_at``), ``mono`` the monotonic time (every
        duration; ``InFlight.since`` is on it)."""
        if mono is None:
            mono = monotonic_at(self.clock, now)
        in_flight: list[InFlight] = []
        ours = self.ledger.in_flight() if self.ledger is not None else []  # a dry run reads, never writes
        if len(self.sent.at) > 2 * len(ours) + 1000:  # now and then: forget the launches no longer in flight
            flying = {launch.id for launch in ours}
            self.sent.keep(lambda key, _: key in flying)
        by_id = {j.job_id: j for js in jobs.values() if js for j in js}
        matched: set[str] = {launch.job_id for launch in ours if launch.job_id in by_id}
        unrecorded: list[tuple[Launch, int]] = []  # in flight with no job id yet (and where in ``in_flight``):
        # their jobs may be listed already
        strangers: list[RemoteJob] = []
        active = self._being_submitted()
        terms: dict[str, _Terms] = {}  # pool -> what its launches need, made when its first one comes
        sent_at = self.sent.at  # launch id -> the monotonic time it was sent
        for launch in ours:
            t = terms.get(launch.pool)
            if t is None:
                t = terms[launch.pool] = self._terms(launch.pool, workers, now, mono)
            if t is _GONE:  # its pool left the config: nothing will follow it any more
                launch = self._end(launch, now, "pool removed", "its pool is no longer in the config")
                continue
            job = by_id.get(launch.job_id) if launch.job_id else None
            here = bool(active) and launch.id in active  # being submitted by this process (seldom any)
            steady = job is not None and ((job.state is _J_RUNNING and launch.state is _L_RUNNING) or
                                          (job.state is _J_STARTING and launch.state is _L_STARTING))
            if not steady or (job.udid and not launch.udid):
                launch = self._record_one(launch, t.pool, job, jobs, t.workers, matched, here, now, mono)
                if not launch.state.in_flight:
                    continue
            # a claim needs the phone and the queue's workers; with a baseline, only a worker on record claims
            if launch.claimed_at is None and t.workers is not None and launch.udid and (
                    launch.claim_baseline is None or launch.udid in t.workers):
                launch = self._claim(launch, t.workers, now)
            if launch.claimed_at is None:
                in_flight.append(_covering(launch, here, t, now, mono, sent_at))
            else:  # claimed: covers nothing, books its phone
                in_flight.append(InFlight(launch.pool, launch.udid, False, mono))
            if not launch.job_id:
                unrecorded.append((launch, len(in_flight) - 1))
        skew = self.settings.adopt_clock_skew_seconds
        for js in jobs.values():
            for job in js or ():
                if job.job_id in matched or job.state is JobState.ENDED or job.pool not in self.pools:
                    continue
                mine = next((m for m in unrecorded if _may_be(m[0], job, skew)), None)
                if mine is not None:  # the job of a launch whose id is not recorded yet: counted once, as the launch
                    unrecorded.remove(mine)
                    if job.udid and not mine[0].udid:  # the cloud placed it: the launch books that phone, whatever
                        # the list says (and no other one kept aside for it)
                        in_flight[mine[1]] = in_flight[mine[1]]._replace(udid=job.udid)
                    continue
                # a job with our tag the ledger does not hold (another daemon, or a lost ledger): respect it. Its age
                # is the remote service's timestamp against the wall clock: all there is to go by
                age = now - job.created_at
                covering = job.state is JobState.STARTING or age < self.claim_estimate(job.pool, now, mono)
                in_flight.append(InFlight(job.pool, job.udid, covering, mono - age))
                strangers.append(job)
        self._report_strangers(strangers)
        return in_flight

    def _report_strangers(self, jobs: list[RemoteJob]) -> None:
        """Live jobs with our tag that no launch of ours knows: another daemon on this account with the same tag
        (it would double-book phones), or a ledger that was lost. Loud, once per job; counted in every cycle."""
        self.strangers = len(jobs)
        for job in jobs:
            if job.job_id not in self._strangers_warned:
                logger.warning(
                    "job {} of pool {} on phone {} carries our job tag {!r} but no launch of ours knows it: another "
                    "daemon with this tag on this account, or a lost ledger? Run one daemon per account and tag",
                    job.job_id, job.pool, job.udid or "-", self.settings.job_tag)
        self._strangers_warned = {j.job_id for j in jobs}

    def _record_one(
        self, launch: Launch, pool: Pool, job: RemoteJob | None, jobs: Mapping[str, list[RemoteJob] | None],
        workers: Mapping[str, Worker] | None, matched: set[str], here: bool, now: float, mono: float,
    ) -> Launch:
        """A launch whose job is new, changed state, ended, or is missing: follow it, adopt it, or end it."""
        provider_jobs = jobs.get(pool.device_provider)
        if job is None and provider_jobs is not None and launch.state is LaunchState.SUBMITTING and not here:
            job = self._adopt(launch, provider_jobs, matched)  # submitted by a process that died mid-call
        if job is not None:
            matched.add(job.job_id)
            if job.state is JobState.ENDED:  # a claim since the last cycle counts before the end: the phone the
                # cloud picked (selector, group) is learned first, so that its worker's claim is checked
                placed = {"udid": job.udid} if job.udid and not launch.udid else {}
                launch = self._claim(replace(launch, **placed), workers, now)
                return self._end(launch, now, job.outcome or "ended", "", job_id=job.job_id, **placed)
            return self._follow(launch, job, now)
        if provider_jobs is not None and launch.state in (LaunchState.STARTING, LaunchState.SUBMITTING):
            if not here and mono - self._sent(launch, now, mono) >= self.settings.max_startup_seconds:
                return self._end(launch, now, "never seen", "not in the provider's job list in time")
        elif provider_jobs is not None and launch.state is LaunchState.RUNNING:
            # measured from when it was sent (its job's creation), on the monotonic clock: a step of the wall clock
            # that moves the provider's list window ends no launch whose job it no longer lists
            if mono - self._sent(launch, now, mono) >= self.settings.jobs_lookback_seconds:
                return self._end(launch, now, "unknown", "fell out of the provider's job list")
        return launch

    def note_idle_workers(
        self, phones: Mapping[str, Sequence[Phone] | None], workers: Mapping[str, Sequence[Worker] | None],
        in_flight: Sequence[InFlight],
    ) -> None:
        """Remember each worker's latest task while its phone is listed idle and booked by no launch: a launch whose
        cloud picked its phone (selector, group) takes that as its baseline once the phone becomes known. (Only such
        a launch learns its phone late: a pinned launch takes its baseline when it is planned.)"""
        if not self._picked_queues:
            return
        idle = {p.udid for listed in phones.values() if listed for p in listed if p.state is PhoneState.IDLE}
        idle.difference_update(f.udid for f in in_flight)
        for q in self._picked_queues:
            for worker in workers.get(q) or ():
                if worker.worker_id in idle:
                    self._idle_latest[q, worker.worker_id] = worker.latest_task

    def _adopt(self, launch: Launch, jobs: list[RemoteJob], taken: set[str]) -> RemoteJob | None:
        """The job a launch left in ``submitting`` (by a process that died or was cut off) became: a job of its
        pool (and phone), live or already ended, created after the launch was written (less the allowed clock skew),
        held by no launch of the ledger, and created before this process began to launch (a later one may be the
        job of a launch of ours still being submitted); the newest such job."""
        skew = self.settings.adopt_clock_skew_seconds
        candidates = [
            j for j in jobs if j.job_id not in taken and _may_be(launch, j, skew)
            and j.created_at <= self.launching_since + skew
        ]
        if not candidates:
            return None
        assert self.ledger is not None
        known = self.ledger.known_job_ids(j.job_id for j in candidates)
        free = [j for j in candidates if j.job_id not in known]
        return max(free, key=lambda j: j.created_at) if free else None

    def _claim(self, launch: Launch, workers: Mapping[str, Worker] | None, now: float) -> Launch:
        """Record when the launch's worker claims a task (see ``Worker``). Needs the phone and the queue's record."""
        if launch.claimed_at is not None or workers is None or not launch.udid:
            return launch
        assert self.ledger is not None
        worker = workers.get(launch.udid)
        if launch.claim_baseline is None:  # the phone just became known: what its worker did before is not ours;
            # its latest task when the phone was last idle and ours was on it (not its latest now: it may have
            # claimed our task between two cycles)
            baseline = self._idle_latest.get((self.pools[launch.pool].queue, launch.udid))
            if baseline is None:
                baseline = worker.latest_task if worker is not None else ""
            self._record(self.ledger.mark, launch.id, claim_baseline=baseline)
            launch = replace(launch, claim_baseline=baseline)
        at = self.sent.at.get(launch.id) if worker is not None and worker.first_claim is not None else None
        sent_wall = self._wall_of(at) if at is not None and self._wall_of is not None else None
        if claimed(launch, worker, self.settings.adopt_clock_skew_seconds, sent_wall):
            self._record(self.ledger.mark, launch.id, claimed_at=now)
            self._claims_seen[launch.pool] += 1
            logger.debug("launch {} of pool {}: worker {} claimed a task", launch.id[:8], launch.pool, launch.udid)
            return replace(launch, claimed_at=now)
        return launch

    def _terms(self, name: str, workers: Mapping[str, Sequence[Worker] | None], now: float, mono: float) -> _Terms:
        """What reconcile needs of a pool with launches in flight, once a cycle, not once per launch: its queue's
        workers by id (None: unknown this cycle) and how long one of its launches may cover a task without a claim
        seen."""
        pool = self.pools.get(name)
        if pool is None:
            return _GONE
        estimate = self.claim_estimate(name, now, mono)
        # a warm launch's worker waits for a task up to its idle timeout: it covers one until then
        warm = max(estimate + idle_timeout(pool) + self.settings.interval, self.settings.max_startup_seconds)
        listed = workers.get(pool.queue)
        return _Terms(pool, None if listed is None else {w.worker_id: w for w in listed}, estimate, warm)

    def claim_estimate(self, pool: str, now: float, mono: float | None = None) -> float:
        """The pool's median launch-to-claim time over the last day, of its demand launches (``claim_seconds``
        until some are known). Read again every ``ESTIMATE_REFRESH`` seconds of the monotonic clock."""
        if mono is None:
            mono = monotonic_at(self.clock, now)
        if self._estimates is None or not 0 <= mono - self._estimates[0] < ESTIMATE_REFRESH:
            learned = demand_claim_seconds(self.ledger, now - 86400.0) if self.ledger is not None else {}
            self._estimates = (mono, {p: statistics.median(v[-ESTIMATE_SAMPLES:]) for p, v in learned.items()})
        return self._estimates[1].get(pool, self.settings.claim_seconds)

    def _sent(self, launch: Launch, now: float, mono: float) -> float:
        """The monotonic time the launch was sent: marked by the submitter of this process, else taken once from
        its wall-clock age when first read (loaded from the ledger after a restart or a takeover)."""
        at = self.sent.at.get(launch.id)
        return at if at is not None else self.sent.of(launch.id, sent(launch), now, mono)

    def _record(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A ledger write of reconcile; a dry run (``status``, ``run --dry-run``) writes nothing."""
        if not self.dry_run:
            write(*args, **kwargs)

    def _follow(self, launch: Launch, job: RemoteJob, now: float) -> Launch:
        fields = {"job_id": job.job_id}
        if job.udid and not launch.udid:
            fields["udid"] = job.udid
        state = LaunchState.RUNNING if job.state is JobState.RUNNING else LaunchState.STARTING
        if state is not launch.state or launch.job_id != job.job_id or "udid" in fields:
            assert self.ledger is not None
            self._record(self.ledger.update, launch.id, state, now, **fields)
            was = launch.state
            launch = replace(launch, state=state, updated_at=now, **fields)
            if state is LaunchState.RUNNING and was is not LaunchState.RUNNING:
                self.hooks("provisioner_launch_running", launch=launch)
        return launch

    def _end(self, launch: Launch, now: float, outcome: str, detail: str, **fields: str) -> Launch:
        assert self.ledger is not None
        self._record(self.ledger.update, launch.id, LaunchState.ENDED, now, outcome=outcome, detail=detail, **fields)
        ended = replace(launch, state=LaunchState.ENDED, outcome=outcome, detail=detail, **fields)
        logger.debug("launch {} of pool {} on {} ended: {}", launch.id[:8], launch.pool, launch.udid or "-", outcome)
        self.hooks("provisioner_launch_ended", launch=ended)
        return ended


def claimed(launch: Launch, worker: Worker | None, skew: float, sent_wall: float | None = None) -> bool:
    """Whether the launch's worker has claimed a task: its first claim ever came after the launch, or its latest
    task is not the one it had when the launch was planned. "After the launch" compares the queue's timestamp with
    ours: after both the recorded wall time and, where known, the time it was sent as the wall clock ran when
    this process began (``sent_wall``), so that a step of our wall clock back makes no older claim look new."""
    if worker is None:
        return False
    after = launch.submitted_at if sent_wall is None else max(launch.submitted_at, sent_wall)
    if worker.first_claim is not None and worker.first_claim >= after - skew:
        return True
    return launch.claim_baseline is not None and worker.latest_task not in ("", launch.claim_baseline)


class _Terms(NamedTuple):
    """What reconcile needs of a pool with launches in flight, made once a cycle (see ``Accounting._terms``)."""

    pool: Pool | None  # None: the pool left the config (``_GONE``)
    workers: Mapping[str, Worker] | None  # the pool's queue's workers by id; None: unknown this cycle
    estimate: float  # how long a demand launch covers a task where its claim cannot be seen
    warm_limit: float  # the same for a warm launch


_GONE = _Terms(None, None, 0.0, 0.0)  # a pool no longer in the config




def _covering(launch: Launch, here: bool, t: _Terms, now: float, mono: float, at: dict) -> InFlight:
    """What the planner needs of a launch in flight whose worker has not claimed a task: it covers a pending task
    until its worker claims one. One still queued, or being submitted by this process, covers however long its
    turn takes. Where the claim cannot be seen this cycle (the queue's workers unknown, the phone not known yet),
    the pool's learned launch-to-claim time stands in (a warm launch: that and its idle timeout). ``since`` is on
    the monotonic clock, as the planner's ``now``: when the launch was sent (``at``: the ``Anchors`` book of
    ``Accounting.sent``, read inline, as ``Anchors.of`` would: this is asked of every launch in flight every cycle)."""
    limit = t.warm_limit if launch.kind == WARM else None
    if launch.state is LaunchState.QUEUED or (here and launch.state is LaunchState.SUBMITTING):
        return InFlight(launch.pool, launch.udid, True, mono, True, limit)
    since = at.get(launch.id)
    if since is None:
        since = at[launch.id] = mono - (now - sent(launch))
    if t.workers is not None and launch.udid:  # its claim will be seen
        return InFlight(launch.pool, launch.udid, True, since, False, limit)
    return InFlight(launch.pool, launch.udid, mono - since < (t.estimate if limit is None else limit), since, False,
                    limit)


def sent(launch: Launch) -> float:
    """When the launch reached the cloud (its submission may have waited minutes behind others of its cycle):
    times that a launch covers its task, or may stay unseen, run from then."""
    return launch.sent_at if launch.sent_at is not None else launch.submitted_at


def _may_be(launch: Launch, job: RemoteJob, skew: float) -> bool:
    """Whether ``job`` may be the job of ``launch``: its pool, its phone (if it names one), created after it."""
    return (
        job.pool == launch.pool
        and (not launch.udid or job.udid == launch.udid)
        and job.created_at >= launch.submitted_at - skew
    )
