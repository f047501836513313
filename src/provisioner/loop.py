"""The cycle: observe, plan, act, record.

``Provisioner.cycle()`` reads every queue, phone and live job (observe), asks the pure planner what to start
(plan), writes each launch to the ledger and hands it to the submitter (act), and reconciles the ledger with
what the provider reports (record). Submissions run on worker threads, paced, and never hold up the next
observation.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
import statistics
from dataclasses import dataclass, field, replace
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple

from loguru import logger

from . import notify
from .clock import Clock
from .config import Config
from .history import BATCH as PRUNE_BATCH
from .history import prune
from .ledger import Fenced, Ledger
from .ledger.leadership import Lease, Role
from .logs import redact
from .model import JobState, Launch, LaunchRequest, LaunchResult, LaunchState, Phone, PhoneState, Plan, PlannedLaunch, Pool, PoolDecision, QueueCounts, RemoteJob, Worker
from .planner import InFlight, Observation, plan
from .strangers import hold_first
from .plugins import Runtime
from .types import RemoteError
from .values import name_problem, one_line
from .warm import WARM, Arrivals, demand_claim_seconds, idle_timeout, warm_target


@dataclass
class CycleReport:
    """What one cycle saw and decided; handed to the ``provisioner_cycle`` hook."""

    cycle: int
    started_at: float
    plan: Plan
    unknown: list[str] = field(default_factory=list)  # one line per thing not known this cycle
    reads: dict[str, str] = field(default_factory=dict)  # "<plugin>: <endpoint>" -> ok | partial | error | plugin_error
    strangers: int = 0  # live jobs with our tag that no launch of ours knows (another daemon?)
    observe_seconds: float = 0.0
    plan_seconds: float = 0.0
    dry_run: bool = False
    active: bool = True  # False: a standby's cycle (observed, planned nothing)
    role: str = "active"


WRITE_TRIES = 4  # a ledger write from a submission thread, tried this often while the database is busy
ESTIMATE_REFRESH = 600.0  # seconds between two readings of the learned launch-to-claim times
ESTIMATE_SAMPLES = 50  # the latest claims of a pool that make its estimate
PRUNE_INTERVAL = 3600.0  # seconds between two foldings of old launches
PRUNE_BATCHES = 5  # batches of history.BATCH launches folded in one cycle at most
GOOD_NAMES_MAX = 1_000_000  # valid names remembered, so that each is checked once
_UDID, _POOL = attrgetter("udid"), attrgetter("pool")
# A job in one of these states, its launch in the other of the pair: nothing to record. (Compared by identity: an
# enum's hash is a Python call, and this is asked of every launch in flight every cycle.)
_J_STARTING, _J_RUNNING, _L_STARTING, _L_RUNNING = (
    JobState.STARTING, JobState.RUNNING, LaunchState.STARTING, LaunchState.RUNNING)
BUSIEST = {PhoneState.IDLE: 0, PhoneState.UNAVAILABLE: 1, PhoneState.BUSY: 2}


class Hooks:
    """Calls observer hooks; an observer that raises is logged, never fatal."""

    def __init__(self, hook: Any) -> None:
        self._hook = hook

    def __call__(self, name: str, **kwargs: Any) -> None:
        if self._hook is None:
            return
        try:
            getattr(self._hook, name)(**kwargs)
        except Exception as exc:  # noqa: BLE001
            logger.warning("an observer plugin failed in {}: {}: {}", name, type(exc).__name__, exc)


class Submitter:
    """Submits queued launches with pacing (``interval`` between starts) and ``concurrency`` side by side.

    ``inline=True`` submits in the caller's thread, in order: for tests and simulations on a virtual clock.
    """

    def __init__(
        self, work: Callable[[Launch], None], cancel: Callable[[Launch], None], clock: Clock,
        interval: float, concurrency: int, inline: bool = False,
    ) -> None:
        self._work, self._cancel, self._clock = work, cancel, clock
        self.interval, self.inline = interval, inline
        self._queue: queue.Queue[Launch | None] = queue.Queue()
        self._stop = threading.Event()
        self._slots = threading.Semaphore(concurrency)
        self._last_start = float("-inf")
        self.capped = 0  # times a submission waited for a free slot (read and reset by the loop each cycle)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="submit") if not inline else None
        self._thread = None
        if not inline:
            self._thread = threading.Thread(target=self._dispatch, name="dispatch", daemon=True)
            self._thread.start()

    def put(self, launch: Launch) -> None:
        if self.inline:
            self._pace()
            self._work(launch)
        else:
            self._queue.put(launch)

    def _pace(self) -> None:
        wait = self._last_start + self.interval - self._clock.now()
        if wait > 0:
            self._clock.sleep(wait, self._stop)
        self._last_start = self._clock.now()

    def _dispatch(self) -> None:
        while True:
            launch = self._queue.get()
            if launch is None:
                return
            if self._stop.is_set():
                self._cancel(launch)
                continue
            if not self._slots.acquire(blocking=False):  # every slot busy: concurrency, not pacing, sets the rate
                self.capped += 1
                self._slots.acquire()
            self._pace()  # after a slot is free: two submissions never start closer than ``interval``
            if self._stop.is_set():
                self._slots.release()
                self._cancel(launch)
                continue
            assert self._pool is not None
            self._pool.submit(self._run, launch)

    def _run(self, launch: Launch) -> None:
        try:
            self._work(launch)
        finally:
            self._slots.release()

    def close(self, cancel: bool) -> None:
        """Wait for the submissions running to finish. Queued ones are cancelled (``cancel``) or submitted first."""
        if cancel:
            self._stop.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            while True:  # anything queued after the sentinel
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._cancel(item)
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class Provisioner:
    def __init__(
        self, config: Config, runtime: Runtime, ledger: Ledger | None, clock: Clock, hook: Any = None,
        dry_run: bool = False, seed: int | None = None, inline: bool = False, lease: Lease | None = None,
    ) -> None:
        self.config, self.runtime, self.ledger, self.clock = config, runtime, ledger, clock
        self.settings = config.settings
        self.pools: dict[str, Pool] = {p.name: p for p in runtime.pools}
        self.dry_run = dry_run
        self.hooks = Hooks(hook)
        self.seed = seed if seed is not None else (self.settings.seed if self.settings.seed is not None else random.randrange(2**31))
        self.cycles = 0
        self._held_logged: set[str] = set()
        self._holds_seen: set[str] = set()  # phones under a recorded hold last cycle
        self._active: set[str] = set()  # launches being submitted by this process
        self.reads: dict[str, str] = {}
        self._active_lock = threading.Lock()
        self.ledger_error: str | None = None  # set when a submission thread could not write the ledger
        self._last_decisions: dict[str, PoolDecision] = {}  # each pool's last logged decision
        self.strangers = 0  # live jobs with our tag that no launch of ours knows, last cycle
        self._planned = False  # whether a cycle of this process planned (see strangers.hold_first)
        self._strangers_warned: set[str] = set()
        self._rendered: set[str] = set()  # pools whose launch a dry run has shown in full
        self._warned: set[tuple[str, str]] = set()
        self._good_names: set[str] = set()  # names from providers already found valid
        self._pruned_at = float("-inf")
        self._launching_since = clock.now()  # jobs created later are never adopted (see _adopt)
        self._idle_latest: dict[tuple[str, str], str] = {}  # (queue, worker) -> latest task while idle
        # queues a selector pool serves: only their launches learn their phone late (see _note_idle_workers)
        by_source: dict[str, dict[str, None]] = defaultdict(dict)  # source -> its queues, in the pools' order
        for pool in self.pools.values():
            by_source[pool.queue_source][pool.queue] = None
        self._sources = ({s: list(qs) for s, qs in by_source.items()},
                         sorted({p.device_provider for p in self.pools.values()}))
        self._selector_queues = {p.queue for p in self.pools.values() if p.targeting == "selector"}
        self._health: tuple[Any, Any, Any] = (None, {}, None)  # (ledger's health version, failures, failing jobs)
        self._estimates: tuple[float, dict[str, float]] | None = None
        self.arrivals = Arrivals(self.settings.warm_window_seconds)  # per queue, for warm = "auto"
        self._claims_seen: Counter[str] = Counter()  # per pool, claims seen since the last observation
        self.submitter = Submitter(
            self._submit, self._cancel, clock, self.settings.launch_interval, self.settings.launch_concurrency, inline
        )
        self.lease = lease if not dry_run else None  # None: always active (an SQLite ledger: one host)
        self.role: Role | None = None if self.lease is not None else Role(True)
        if ledger is not None and not dry_run and self.lease is None:
            cancelled = ledger.recover(clock.now())
            kept = ledger.in_flight()
            if cancelled or kept:
                logger.info("ledger: {} launches still in flight loaded back, {} never submitted cancelled", len(kept), cancelled)

    # -- observe -------------------------------------------------------------------------------------
    def observe(self, now: float) -> tuple[Observation, list[str], dict[str, list[RemoteJob] | None]]:
        unknown: list[str] = []
        self.reads = reads = {}  # this observation's reads, for the cycle report
        queues_by_source, providers = self._sources
        counts: dict[str, Any] = {}
        quarantined: dict[str, Any] = {}
        workers: dict[str, Sequence[Worker] | None] = {}
        for source_name, queues in queues_by_source.items():
            source = self.runtime.queue_source(source_name)
            counts.update(_guard(lambda: source.counts(queues), f"{source_name}: counts", unknown, reads, QueueCounts) or {})
            answer = _guard(lambda: source.workers(queues), f"{source_name}: workers", unknown, reads, Sequence) or {}
            well_typed = _all_of(chain.from_iterable(filter(None, answer.values())), Worker)  # one pass, all queues
            for q, listed in answer.items():
                if listed is not None and not well_typed and not _all_of(listed, Worker):
                    unknown.append(f"{source_name}: workers: plugin error: {q}: not a list of Worker")
                    reads[f"{source_name}: workers"] = "plugin_error"
                    listed = None
                workers[q] = listed
                quarantined[q] = None if listed is None else quarantine_of(listed, now)
            for q in queues:
                workers.setdefault(q, None)
                counts.setdefault(q, None)
                quarantined.setdefault(q, None)
        phones: dict[str, Any] = {}
        jobs: dict[str, list[RemoteJob] | None] = {}
        since = now - self.settings.jobs_lookback_seconds
        for name in providers:
            provider = self.runtime.device_provider(name)
            phones[name] = _guard(lambda: list(provider.phones()), f"{name}: phones", unknown, reads, Phone)
            if phones[name] is not None:
                udids = set(map(_UDID, phones[name]))  # the common cycle: every UDID once, each seen before
                if len(udids) != len(phones[name]) or not self._good_names.issuperset(udids):
                    phones[name] = self._dedupe(name, self._named(name, "phone", phones[name], _UDID))
            jobs[name] = _guard(lambda: list(provider.jobs(since)), f"{name}: jobs", unknown, reads, RemoteJob)
            if jobs[name] is not None:  # a job's pool and phone come from its labels: foreign text is skipped
                jobs[name] = self._named(name, "job", self._named(name, "job", jobs[name], _POOL), _UDID,
                                         optional=True)  # a job not placed on a phone names none
            if jobs[name] is None:  # which phones our jobs hold is unknown: so is which phones are free
                phones[name] = None
        obs = Observation(counts=counts, quarantined=quarantined, phones=phones)
        return obs, unknown, jobs, workers

    def _named(self, provider: str, what: str, items: list[Any], name_of: Callable[[Any], str],
               optional: bool = False) -> list[Any]:
        """``items`` without those whose name (``name_of``) may not become a label, a path or an argument (an
        empty name is one, unless ``optional``: then it is no name). Each name is checked once; a cycle whose
        names were all seen before costs one pass."""
        good = self._good_names
        if good.issuperset(filter(None, map(name_of, items)) if optional else map(name_of, items)):
            return items
        return [i for i in items if (optional and not name_of(i)) or self._valid(provider, what, name_of(i))]

    def _valid(self, provider: str, what: str, name: str) -> bool:
        """Whether a name from a provider (a UDID, a job's labels) may become a label, a path or an argument;
        one warning per bad name (escaped: a newline in it forges no log line)."""
        if name in self._good_names:
            return True
        problem = name_problem(name, "UDID" if what == "phone" else "label")
        if problem is None:
            if len(self._good_names) < GOOD_NAMES_MAX:
                self._good_names.add(name)
            return True
        if (provider, name) not in self._warned:
            self._warned.add((provider, name))
            logger.warning("{}: {} skipped: {}", provider, what, one_line(problem))
        return False

    def _dedupe(self, provider: str, phones: list[Phone]) -> list[Phone]:
        """One phone per UDID: a phone listed twice takes its busiest state, and is warned of once."""
        if len(set(map(_UDID, phones))) == len(phones):
            return phones
        kept: dict[str, Phone] = {}
        for phone in phones:
            seen = kept.get(phone.udid)
            if seen is None or BUSIEST[phone.state] > BUSIEST[seen.state]:
                kept[phone.udid] = phone
            if seen is not None and (provider, phone.udid) not in self._warned:
                self._warned.add((provider, phone.udid))
                logger.warning("{}: phone {} is listed more than once; taken as {}", provider, phone.udid,
                               kept[phone.udid].state.value)
        return list(kept.values())

    # -- record --------------------------------------------------------------------------------------
    def reconcile(
        self, jobs: Mapping[str, list[RemoteJob] | None], workers: Mapping[str, Sequence[Worker] | None], now: float
    ) -> list[InFlight]:
        """Bring the ledger up to date with the providers' job lists and the queues' worker records; return
        everything in flight, each launch covering a pending task until its worker has claimed one."""
        in_flight: list[InFlight] = []
        ours = self.ledger.in_flight() if self.ledger is not None else []  # a dry run reads, never writes
        by_id = {j.job_id: j for js in jobs.values() if js for j in js}
        matched: set[str] = {launch.job_id for launch in ours if launch.job_id in by_id}
        unrecorded: list[Launch] = []  # in flight with no job id yet: their jobs may be listed already
        strangers: list[RemoteJob] = []
        with self._active_lock:
            active = set(self._active)
        terms: dict[str, _Terms] = {}  # pool -> what its launches need, made when its first one comes
        for launch in ours:
            t = terms.get(launch.pool)
            if t is None:
                t = terms[launch.pool] = self._terms(launch.pool, workers, now)
            if t is _GONE:  # its pool left the config: nothing will follow it any more
                launch = self._end(launch, now, "pool removed", "its pool is no longer in the config")
                continue
            job = by_id.get(launch.job_id) if launch.job_id else None
            here = bool(active) and launch.id in active  # being submitted by this process (seldom any)
            steady = job is not None and ((job.state is _J_RUNNING and launch.state is _L_RUNNING) or
                                          (job.state is _J_STARTING and launch.state is _L_STARTING))
            if not steady or (job.udid and not launch.udid):
                launch = self._record_one(launch, t.pool, job, jobs, t.workers, matched, here, now)
                if not launch.state.in_flight:
                    continue
            # a claim needs the phone and the queue's workers; with a baseline, only a worker on record claims
            if launch.claimed_at is None and t.workers is not None and launch.udid and (
                    launch.claim_baseline is None or launch.udid in t.workers):
                launch = self._claim(launch, t.workers, now)
            if launch.claimed_at is None:
                in_flight.append(_covering(launch, here, t, now))
            else:  # claimed: covers nothing, books its phone
                in_flight.append(InFlight(launch.pool, launch.udid, False, sent(launch)))
            if not launch.job_id:
                unrecorded.append(launch)
        skew = self.settings.adopt_clock_skew_seconds
        for js in jobs.values():
            for job in js or ():
                if job.job_id in matched or job.state is JobState.ENDED or job.pool not in self.pools:
                    continue
                mine = next((la for la in unrecorded if _may_be(la, job, skew)), None)
                if mine is not None:  # the job of a launch whose id is not recorded yet: counted once, as the launch
                    unrecorded.remove(mine)
                    if job.udid and not mine.udid:  # the cloud placed it: its phone is taken, whatever the list says
                        in_flight.append(InFlight(job.pool, job.udid, False, job.created_at))
                    continue
                # a job with our tag the ledger does not hold (another daemon, or a lost ledger): respect it
                covering = job.state is JobState.STARTING or now - job.created_at < self.claim_estimate(job.pool, now)
                in_flight.append(InFlight(job.pool, job.udid, covering, job.created_at))
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
        workers: Mapping[str, Worker] | None, matched: set[str], here: bool, now: float,
    ) -> Launch:
        """A launch whose job is new, changed state, ended, or is missing: follow it, adopt it, or end it."""
        provider_jobs = jobs.get(pool.device_provider)
        if job is None and provider_jobs is not None and launch.state is LaunchState.SUBMITTING and not here:
            job = self._adopt(launch, provider_jobs, matched)  # submitted by a process that died mid-call
        if job is not None:
            matched.add(job.job_id)
            if job.state is JobState.ENDED and launch.udid:  # a claim since the last cycle counts before the end
                launch = self._claim(launch, workers, now)
            return self._follow(launch, job, now)
        if provider_jobs is not None and launch.state in (LaunchState.STARTING, LaunchState.SUBMITTING):
            if now - sent(launch) >= self.settings.max_startup_seconds and not here:
                return self._end(launch, now, "never seen", "not in the provider's job list in time")
        elif provider_jobs is not None and launch.state is LaunchState.RUNNING:
            if now - launch.submitted_at >= self.settings.jobs_lookback_seconds:
                return self._end(launch, now, "unknown", "fell out of the provider's job list")
        return launch

    def _note_idle_workers(
        self, phones: Mapping[str, Sequence[Phone] | None], workers: Mapping[str, Sequence[Worker] | None],
        in_flight: Sequence[InFlight],
    ) -> None:
        """Remember each worker's latest task while its phone is listed idle and booked by no launch: a selector
        launch whose phone becomes known later takes that as its baseline. (Only a selector pool's launch learns
        its phone late: a pinned launch takes its baseline when it is planned.)"""
        if not self._selector_queues:
            return
        idle = {p.udid for listed in phones.values() if listed for p in listed if p.state is PhoneState.IDLE}
        idle.difference_update(f.udid for f in in_flight)
        for q in self._selector_queues:
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
            and j.created_at <= self._launching_since + skew
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
        if claimed(launch, worker, self.settings.adopt_clock_skew_seconds):
            self._record(self.ledger.mark, launch.id, claimed_at=now)
            self._claims_seen[launch.pool] += 1
            logger.debug("launch {} of pool {}: worker {} claimed a task", launch.id[:8], launch.pool, launch.udid)
            return replace(launch, claimed_at=now)
        return launch

    def _terms(self, name: str, workers: Mapping[str, Sequence[Worker] | None], now: float) -> _Terms:
        """What reconcile needs of a pool with launches in flight, once a cycle, not once per launch: its queue's
        workers by id (None: unknown this cycle) and how long one of its launches may cover a task without a claim
        seen."""
        pool = self.pools.get(name)
        if pool is None:
            return _GONE
        estimate = self.claim_estimate(name, now)
        # a warm launch's worker waits for a task up to its idle timeout: it covers one until then
        warm = max(estimate + idle_timeout(pool) + self.settings.interval, self.settings.max_startup_seconds)
        listed = workers.get(pool.queue)
        return _Terms(pool, None if listed is None else {w.worker_id: w for w in listed}, estimate, warm)

    def claim_estimate(self, pool: str, now: float) -> float:
        """The pool's median launch-to-claim time over the last day, of its demand launches (``claim_seconds``
        until some are known)."""
        if self._estimates is None or now - self._estimates[0] >= ESTIMATE_REFRESH:
            learned = demand_claim_seconds(self.ledger, now - 86400.0) if self.ledger is not None else {}
            self._estimates = (now, {p: statistics.median(v[-ESTIMATE_SAMPLES:]) for p, v in learned.items()})
        return self._estimates[1].get(pool, self.settings.claim_seconds)

    def _record(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A ledger write of reconcile; a dry run (``status``, ``run --dry-run``) writes nothing."""
        if not self.dry_run:
            write(*args, **kwargs)

    def _follow(self, launch: Launch, job: RemoteJob, now: float) -> Launch:
        fields = {"job_id": job.job_id}
        if job.udid and not launch.udid:
            fields["udid"] = job.udid
        if job.state is JobState.ENDED:
            return self._end(launch, now, job.outcome or "ended", "", **fields)
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

    def held_back(self, now: float) -> dict[str, float]:
        """Phones to leave alone: udid -> until when. See ``holds``."""
        return {udid: until for udid, (until, _) in self.holds(now).items()}

    def holds(self, now: float) -> dict[str, tuple[float, str]]:
        """Phones to leave alone, with why: udid -> (until, reason).

        After failed submissions, a backoff after each and a long hold after several in a row; a phone whose jobs
        keep failing is held (and the hold recorded in the ledger); and the holds an operator made by hand.
        An operator's release forgives every failure before it.
        """
        if self.ledger is None:
            return {}
        s = self.settings
        held: dict[str, tuple[float, str]] = {}
        released = self.ledger.releases()
        # A phone whose last failed submission is older than the longest hold or backoff is held by none.
        horizon = now - max(s.hold_seconds, s.retry_backoff_seconds * 2 ** (s.failures_before_hold - 1))
        # Read again only when a launch ended or failed, or a hold was recorded: time alone only ages failures
        # out of their windows, which holds nothing new (and a result that did hold was recorded: a change).
        version = self.ledger.health_version()
        if version != self._health[0] or self.dry_run:
            self._health = (version, self.ledger.recent_failures(s.failures_before_hold, since=horizon), None)
        for udid, recent in self._health[1].items():
            run = 0
            for launch in recent:
                if launch.state is not LaunchState.FAILED or launch.updated_at <= released.get(udid, float("-inf")):
                    break
                run += 1
            if run == 0:
                continue
            last = recent[0].updated_at
            if run >= s.failures_before_hold:
                until = last + s.hold_seconds
                if until > now and udid not in self._held_logged:
                    self._held_logged.add(udid)
                    logger.warning("phone {} held back for {:.0f} s after {} failed launches in a row", udid, until - now, run)
            else:
                until = last + s.retry_backoff_seconds * 2 ** (run - 1)
            if until > now:
                held[udid] = (until, f"{run} failed submission{'s' if run > 1 else ''} in a row")
        self._held_logged &= set(held)  # a phone held again later is logged again
        if not self.dry_run and self._health[2] is None:
            failing = self.ledger.failing_jobs(
                s.job_failure_outcomes, now - s.job_failure_window_seconds, s.job_failures_before_hold
            )
            self._health = (self._health[0], self._health[1], failing)
            for udid, (run, _) in failing.items():
                reason = f"{run} failed jobs in a row"
                self.ledger.hold(udid, now, now + s.job_failure_hold_seconds, "jobs", reason)
                logger.warning("phone {} held back for {:.0f} s after {}", udid, s.job_failure_hold_seconds, reason)
        recorded = self.ledger.holds(now)
        for hold in recorded:
            if hold.until > held.get(hold.udid, (0.0, ""))[0]:
                why = "held by hand" if hold.source == "manual" else "held"
                held[hold.udid] = (hold.until, f"{why}: {hold.reason}" if hold.reason else why)
        for udid in self._holds_seen - {h.udid for h in recorded}:
            logger.info("phone {} is no longer held back", udid)
        self._holds_seen = {h.udid for h in recorded}
        return held

    # -- one cycle -----------------------------------------------------------------------------------
    def observation(self, now: float) -> tuple[Observation, list[str], Mapping[str, Sequence[Worker] | None]]:
        """What the planner plans from at ``now``: the remote reads, the ledger brought up to date (in one
        transaction; a dry run writes nothing) and the phones held back. A cycle and ``provisioner status`` share it."""
        obs, unknown, jobs, workers = self.observe(now)
        with self.ledger.batch() if self.ledger is not None else contextlib.nullcontext():  # one transaction
            in_flight = self.reconcile(jobs, workers, now)
        self._note_idle_workers(obs.phones, workers, in_flight)
        held = self.held_back(now)  # after the batch: phone health reads this cycle's endings from disk
        obs = Observation(
            counts=obs.counts, quarantined=obs.quarantined, phones=obs.phones, in_flight=in_flight,
            held=held, last_used=self.ledger.last_used() if self.ledger is not None else {},
            warm=self.warm_targets(obs.counts, now),
        )
        return obs, unknown, workers

    def warm_targets(self, counts: Mapping[str, QueueCounts | None], now: float) -> dict[str, int]:
        """Each pool's warm target this cycle (see ``warm``); the arrivals at an ``auto`` pool's queue are measured
        first (a queue has one pool)."""
        claims, self._claims_seen = self._claims_seen, Counter()
        targets = {}
        for pool in self.pools.values():
            if pool.warm == "auto":
                self.arrivals.observe(pool.queue, now, counts.get(pool.queue), claims[pool.name])
            if pool.warm:
                targets[pool.name] = warm_target(pool, self.arrivals.likely_rate(pool.queue), self.claim_estimate(pool.name, now),
                                                 self.settings.warm_safety_factor)
        return targets

    def cycle(self) -> CycleReport:
        self.cycles += 1
        t0 = time.perf_counter()
        now = self.clock.now()
        if self.lease is not None and not self._lead(now).active:
            return self._stand_by(now, t0)
        obs, unknown, workers = self.observation(now)
        t1 = time.perf_counter()
        the_plan = plan(tuple(self.pools.values()), obs, self.settings.limits, now, seed=self.seed + self.cycles)
        if self.strangers and not self._planned:  # another daemon's jobs with our tag: none launched this cycle
            the_plan = hold_first(the_plan, self.strangers, self.settings.job_tag)
        self._planned = True
        t2 = time.perf_counter()
        report = CycleReport(self.cycles, now, the_plan, unknown, dict(self.reads), self.strangers, t1 - t0, t2 - t1,
                             self.dry_run)
        for line in unknown:
            logger.warning("unknown this cycle: {}", line)
        capped, self.submitter.capped = self.submitter.capped, 0
        if capped:
            logger.info("launch rate capped by launch_concurrency ({}): {} submissions waited for a free slot",
                        self.settings.launch_concurrency, capped)
        self._log_decisions(the_plan, report)
        self.hooks("provisioner_cycle", report=report)
        self.act(the_plan, workers, now)
        self._retain(now)
        return report

    # -- leadership (a PostgreSQL ledger shared by several daemons) ---------------------------------------
    def _lead(self, now: float) -> Role:
        """Check the lease; on taking over, load the launches in flight (and cancel those never submitted); on
        losing it, forget them. One log line when the role changes."""
        assert self.lease is not None and self.ledger is not None
        was, role = self.role, self.lease.check(now)
        if role.active and (was is None or not was.active or was.epoch != role.epoch):
            try:
                self.ledger.take_over(self.settings.job_tag, role.epoch)
                self._launching_since = now
                cancelled = self.ledger.recover(now)
            except Exception as exc:  # noqa: BLE001 - the ledger went away between the lease and the load
                self.lease.release()
                role = Role(False, problem=f"ledger unreachable: {redact(one_line(str(exc)))[:200]}")
            else:
                self.ledger_error = None  # what a lost connection broke is read back from the ledger now
                logger.info("role: active (epoch {}): took over; {} launches in flight loaded, {} never submitted "
                            "cancelled", role.epoch, len(self.ledger.in_flight()), cancelled)
        if not role.active and (was is None or was.active or bool(was.problem) != bool(role.problem)):
            if was is not None and was.active:
                self.ledger.step_down()
            logger.log("WARNING" if role.problem or (was is not None and was.active) else "INFO",
                       "role: {}: no planning, no launch", role.describe(_stamp))
        self.role = role
        return role

    def _stand_by(self, now: float, t0: float) -> CycleReport:
        """A standby's cycle: it reads the remote services (its metrics stay live), plans and launches nothing."""
        assert self.role is not None
        _, unknown, _, _ = self.observe(now)
        report = CycleReport(self.cycles, now, Plan((), ()), unknown, dict(self.reads), 0,
                             time.perf_counter() - t0, 0.0, self.dry_run, active=False,
                             role=self.role.describe(_stamp))
        logger.info("standby cycle {}: {}", self.cycles, report.role)
        self.hooks("provisioner_cycle", report=report)
        return report

    def _retain(self, now: float) -> None:
        """Fold launches past the retention horizon: every ``PRUNE_INTERVAL``, a few small batches a cycle."""
        if self.ledger is None or self.dry_run or now - self._pruned_at < PRUNE_INTERVAL:
            return
        gone = prune(self.ledger, now, self.settings.retention_days, PRUNE_BATCHES)
        if gone < PRUNE_BATCHES * PRUNE_BATCH:  # all done until the next interval; else more next cycle
            self._pruned_at = now
        if gone:
            logger.info("ledger: {} launches older than {:g} days folded into daily counts", gone,
                        self.settings.retention_days)

    def _log_decisions(self, the_plan: Plan, report: CycleReport) -> None:
        """A pool's line at INFO when something about it changed or it launched (DEBUG otherwise); one summary line."""
        known = [d.pending for d in the_plan.decisions if d.pending is not None]
        for d in the_plan.decisions:
            changed = self._last_decisions.get(d.pool) != d
            self._last_decisions[d.pool] = d
            if changed or d.launches:
                logger.info("{}", self._line(d))
            else:  # formatted only if some sink takes DEBUG
                logger.opt(lazy=True).debug("{}", lambda d=d: self._line(d))
        logger.info(
            "cycle {}: {} pools, pending {}, starting {}, {} {}, {} unknown reads, observe {:.0f} ms, plan {:.0f} ms",
            report.cycle, len(the_plan.decisions), sum(known), sum(d.starting for d in the_plan.decisions),
            "would launch" if self.dry_run else "launching", len(the_plan.launches), len(report.unknown),
            report.observe_seconds * 1000, report.plan_seconds * 1000,
        )

    def _line(self, d: PoolDecision) -> str:
        line = (f"pool {d.pool}: pending {_n(d.pending)} claimed {_n(d.claimed)} | idle {_n(d.idle)} busy {_n(d.busy)} "
                f"starting {d.starting} quarantined {_n(d.quarantined)} held {_n(d.held)} | "
                f"{'would launch' if self.dry_run else 'launched'} {d.launches} ({d.reason})")
        if d.warm_target or d.warm:
            line += f" | warm {_n(d.warm)} of {d.warm_target}"
        return line

    # -- act -----------------------------------------------------------------------------------------
    def act(self, the_plan: Plan, workers: Mapping[str, Sequence[Worker] | None], now: float) -> None:
        latest: dict[str, dict[str, str]] = {}  # queue -> worker -> its latest task, made for the queues launched on
        for i, planned in enumerate(the_plan.launches):
            if self.dry_run or self.ledger is None:
                self._would_launch(planned, f"dry-{self.cycles}-{i}")
            else:
                queue_id = self.pools[planned.pool].queue
                listed = workers.get(queue_id)
                baseline = None
                if planned.udid and listed is not None:  # what the phone's worker last claimed, before this launch
                    if queue_id not in latest:
                        latest[queue_id] = {w.worker_id: w.latest_task for w in listed}
                    baseline = latest[queue_id].get(planned.udid, "")
                self.submitter.put(self.ledger.add(planned.pool, planned.udid, now, claim_baseline=baseline,
                                                   kind=planned.kind))

    def _would_launch(self, planned: PlannedLaunch, launch_id: str) -> None:
        """A dry run's launch: the host never calls ``launch()``; a launcher that can ``render`` shows what it would
        run (once per pool, in full; then one line a launch). Nothing is paced, queued or recorded."""
        pool = self.pools[planned.pool]
        target = planned.udid or str(pool.selector)
        launcher = self.runtime.launcher(pool.launcher)
        render = getattr(launcher, "render", None)
        shown = ""
        if callable(render) and pool.name not in self._rendered:
            self._rendered.add(pool.name)
            request = LaunchRequest(launch_id, pool, planned.udid, self._labels(pool, planned.udid), dry_run=True)
            try:
                shown = ":\n" + redact(str(render(request)))
            except Exception as exc:  # noqa: BLE001 - a launcher bug shows as one line
                shown = f" (render failed: {type(exc).__name__}: {exc})".splitlines()[0]
        logger.info("dry run: would launch for pool {} on {}{}", pool.name, target, shown)

    def _submit(self, launch: Launch) -> None:
        """Submit one launch (on a worker thread). Whatever goes wrong ends the launch ``failed`` with the reason,
        and frees its phone; a ledger that cannot be written stops the watchdog (see ``run``)."""
        started = self.clock.now()
        with self._active_lock:
            self._active.add(launch.id)
        try:
            self._submit_one(launch, started)
        except Fenced as exc:  # another daemon leads now: it cancels this launch (never submitted)
            logger.warning("launch {} for pool {}: not submitted: {}", launch.id[:8], launch.pool, exc)
        except Exception as exc:  # noqa: BLE001 - never lose a launch in a thread pool's silence
            detail = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])[:500]
            logger.error("launch {} for pool {}: submission failed: {}", launch.id[:8], launch.pool, detail)
            try:
                self._write(self.ledger.update, launch.id, LaunchState.FAILED, self.clock.now(), detail=detail)
            except Exception as again:  # noqa: BLE001
                self.ledger_error = redact(f"{type(again).__name__}: {again}".splitlines()[0])[:300]
                logger.error("ledger cannot be written: {}; the watchdog is no longer fed", self.ledger_error)
        finally:
            with self._active_lock:
                self._active.discard(launch.id)

    def _submit_one(self, launch: Launch, started: float) -> None:
        """Mark the launch submitting, call the launcher, record the job or the failure (with how long it took:
        ``check`` compares that with the pacing). Each step one write, as the launch moves on."""
        assert self.ledger is not None
        pool = self.pools[launch.pool]
        request = LaunchRequest(launch.id, pool, launch.udid, self._labels(pool, launch.udid), kind=launch.kind)
        if not self._write(self.ledger.update, launch.id, LaunchState.SUBMITTING, self.clock.now(),
                           only_from=LaunchState.QUEUED):
            logger.warning("launch {} for pool {}: not submitted: no longer queued", launch.id[:8], launch.pool)
            return
        if self.lease is not None and not self.lease.held():  # the write waited past the lease: another may lead
            logger.warning("launch {} for pool {}: not submitted: the lease is no longer proven", launch.id[:8], launch.pool)
            with contextlib.suppress(Exception):  # else the next leader ends it: no job was made
                self._write(self.ledger.update, launch.id, LaunchState.CANCELLED, self.clock.now(),
                            only_from=LaunchState.SUBMITTING, detail="the lease was no longer proven")
            return
        try:
            result = self.runtime.launcher(pool.launcher).launch(request)
            if not isinstance(result, LaunchResult):
                result = LaunchResult(False, detail=f"launcher returned {type(result).__name__}, not LaunchResult")
        except Exception as exc:  # noqa: BLE001 - a launcher bug fails one launch, not the loop
            result = LaunchResult(False, detail=f"launcher raised {type(exc).__name__}: {exc}".splitlines()[0])
        now = self.clock.now()
        took = now - started
        target = launch.udid or str(pool.selector)
        if result.ok and result.job_id:
            if self.ledger.known_job_ids([result.job_id]):
                result = LaunchResult(False, detail=f"job id {result.job_id} is already recorded for another launch")
        if result.ok and result.job_id:
            # reconcile may have seen the job already (running, even ended): never move it back
            if not self._write(self.ledger.update, launch.id, LaunchState.STARTING, now,
                               only_from=LaunchState.SUBMITTING, job_id=result.job_id, detail=result.url, sent_at=now,
                               submit_seconds=took):
                self._write(self.ledger.mark, launch.id, sent_at=now, submit_seconds=took)
            logger.info("launched job {} for pool {} on {} {}", result.job_id, pool.name, target, result.url)
            self.hooks("provisioner_launch_submitted", launch=self.ledger.get(launch.id), result=result)
        else:
            detail = redact(result.detail or "launcher reported success without a job id")
            self._write(self.ledger.update, launch.id, LaunchState.FAILED, now, detail=detail[-2000:],
                        submit_seconds=took)
            logger.error("launch for pool {} on {} failed: {}", pool.name, target, detail.splitlines()[-1] if detail else "")
            self.hooks("provisioner_launch_failed", launch=self.ledger.get(launch.id), result=result)

    def _write(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A ledger write from a submission thread, tried again while the database is busy."""
        for attempt in range(WRITE_TRIES):
            try:
                return write(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                if self.ledger is None or not self.ledger.busy(exc) or attempt == WRITE_TRIES - 1:
                    raise
                self.clock.sleep(0.5 * 2**attempt)
        return None

    def _labels(self, pool: Pool, udid: str) -> tuple[str, ...]:
        return (self.settings.job_tag, pool.name, udid)

    def _cancel(self, launch: Launch) -> None:
        if not self.dry_run and self.ledger is not None:
            self.ledger.update(launch.id, LaunchState.CANCELLED, self.clock.now(), detail="stopped before submission")

    # -- run -----------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, max_cycles: int | None = None, duration: float | None = None) -> None:
        start = self.clock.now()
        try:
            while not stop.is_set():
                began = self.clock.now()
                try:
                    self.cycle()
                except Exception:  # noqa: BLE001 - the loop outlives any one cycle's bug
                    logger.exception("cycle {} failed; going on", self.cycles)
                else:  # systemd restarts a loop that stops completing cycles, hung or failing, or losing launches
                    if self.ledger_error is None:
                        role = "" if self.lease is None or self.role is None else f", {self.role.describe(_stamp)}"
                        notify.watchdog(f"cycle {self.cycles}{role}")
                    else:
                        notify.notify(f"STATUS=ledger cannot be written: {self.ledger_error}")
                if max_cycles is not None and self.cycles >= max_cycles:
                    break
                if duration is not None and self.clock.now() - start >= duration:
                    break
                self.clock.sleep(max(0.0, began + self.settings.interval - self.clock.now()), stop)
        finally:
            self.submitter.close(cancel=stop.is_set())  # the submissions in flight return first,
            self.runtime.close()  # then each plugin object is closed, once



def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def quarantine_of(workers: Sequence[Worker], now: float) -> frozenset[str]:
    """The ids of the workers quarantined at ``now``."""
    return frozenset(w.worker_id for w in workers if w.quarantined_until is not None and w.quarantined_until > now)


def _all_of(values: Any, kind: type, none: bool = False) -> bool:
    """Whether every value is a ``kind`` (or None, with ``none``): one pass over their types, not their values."""
    types = set(map(type, values))
    types.discard(kind)
    if none:
        types.discard(type(None))
    return all(issubclass(t, kind) for t in types)


def _guard(call: Callable[[], Any], what: str, unknown: list[str], reads: dict[str, str], kind: type) -> Any:
    """Run one remote read; on failure record one line and return None (unknown), never an empty answer.

    The answer is a list of ``kind`` or a mapping to ``kind`` (or None); anything else is a plugin error."""
    try:
        answer = call()
        mapping = isinstance(answer, Mapping)
        values = answer.values() if mapping else answer
        bad = () if _all_of(values, kind, none=mapping) else [
            v for v in values if not (isinstance(v, kind) or (v is None and mapping))]
        if bad:
            raise TypeError(f"answered {type(bad[0]).__name__}, not {kind.__name__}")
    except RemoteError as exc:
        unknown.append(f"{what}: {exc}")
        reads[what] = "error"
    except Exception as exc:  # noqa: BLE001 - a plugin bug makes the data unknown, not the loop dead
        unknown.append(f"{what}: plugin error {type(exc).__name__}: {exc}".splitlines()[0])
        reads[what] = "plugin_error"
    else:
        partial = isinstance(answer, Mapping) and any(v is None for v in answer.values())
        reads[what] = "partial" if partial else "ok"
        return answer
    return None


def claimed(launch: Launch, worker: Worker | None, skew: float) -> bool:
    """Whether the launch's worker has claimed a task: its first claim ever came after the launch, or its latest
    task is not the one it had when the launch was planned."""
    if worker is None:
        return False
    if worker.first_claim is not None and worker.first_claim >= launch.submitted_at - skew:
        return True
    return launch.claim_baseline is not None and worker.latest_task not in ("", launch.claim_baseline)


class _Terms(NamedTuple):
    """What reconcile needs of a pool with launches in flight, made once a cycle (see ``Provisioner._terms``)."""

    pool: Pool | None  # None: the pool left the config (``_GONE``)
    workers: Mapping[str, Worker] | None  # the pool's queue's workers by id; None: unknown this cycle
    estimate: float  # how long a demand launch covers a task where its claim cannot be seen
    warm_limit: float  # the same for a warm launch


_GONE = _Terms(None, None, 0.0, 0.0)  # a pool no longer in the config


def _covering(launch: Launch, here: bool, t: _Terms, now: float) -> InFlight:
    """What the planner needs of a launch in flight whose worker has not claimed a task: it covers a pending task
    until its worker claims one. One still queued, or being submitted by this process, covers however long its
    turn takes. Where the claim cannot be seen this cycle (the queue's workers unknown, the phone not known yet),
    the pool's learned launch-to-claim time stands in (a warm launch: that and its idle timeout)."""
    since = sent(launch)
    limit = t.warm_limit if launch.kind == WARM else None
    if launch.state is LaunchState.QUEUED or (here and launch.state is LaunchState.SUBMITTING):
        return InFlight(launch.pool, launch.udid, True, since, True, limit)
    if t.workers is not None and launch.udid:  # its claim will be seen
        return InFlight(launch.pool, launch.udid, True, since, False, limit)
    return InFlight(launch.pool, launch.udid, now - since < (t.estimate if limit is None else limit), since, False,
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


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)
