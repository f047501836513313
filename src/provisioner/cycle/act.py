"""Act: the plan's launches written to the ledger and submitted, paced; a dry run's launches rendered.

Owns the submitter (worker threads, ``launch_interval`` between two starts, ``launch_concurrency`` side by side),
each submission's ledger writes (queued, submitting, starting or failed: one write a step, retried while the
database is busy), which launches this process is submitting now, the ledger error that stops the watchdog, and
what a dry run shows of a launch. May not touch: the remote reads, the launches' later life (``accounting``
follows them once they have a job), the plan.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loguru import logger

from ..clock import Anchors, Clock, steady
from ..config import Settings
from ..ledger import Fenced, Ledger
from ..ledger.leadership import Lease
from ..logs import redact
from ..model import Launch, LaunchRequest, LaunchResult, LaunchState, Plan, PlannedLaunch, Pool, Worker
from ..plugins import Runtime
from .hooks import Hooks

WRITE_TRIES = 4  # a ledger write from a submission thread, tried this often while the database is busy


class Submitter:
    """Submits queued launches with pacing (``interval`` between starts) and ``concurrency`` side by side.

    ``inline=True`` submits in the caller's thread, in order: for tests and simulations on a virtual clock.
    """

    def __init__(
        self, work: Callable[[Launch], None], cancel: Callable[[Launch], None], clock: Clock,
        interval: float, concurrency: int, inline: bool = False,
    ) -> None:
        self._work, self._cancel, self._clock, self._mono = work, cancel, clock, steady(clock)
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
        """Wait until ``interval`` after the last start, on the monotonic clock (a step of the wall clock neither
        stalls nor bunches the submissions)."""
        wait = self._last_start + self.interval - self._mono()
        if wait > 0:
            self._clock.sleep(wait, self._stop)
        self._last_start = self._mono()

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

class Submissions:
    """``act(plan, workers, now, cycle)`` once a cycle; ``being_submitted()`` for reconcile; ``close()`` at the end."""

    def __init__(
        self, settings: Settings, runtime: Runtime, pools: Mapping[str, Pool], ledger: Ledger | None, clock: Clock,
        hooks: Hooks, dry_run: bool, inline: bool, lease: Lease | None = None,
    ) -> None:
        self.settings, self.runtime, self.pools, self.ledger, self.clock = settings, runtime, pools, ledger, clock
        self.mono = steady(clock)
        # the monotonic times this process sent each launch and failed each submission (by launch id): what a
        # launch covers (accounting) and a phone's backoff (health) are measured from them
        self.sent, self.failed = Anchors(), Anchors()
        self.hooks, self.dry_run = hooks, dry_run
        self.lease = lease  # several daemons on one ledger: a launch goes out only while the lease is proven
        self.active: set[str] = set()  # launches being submitted by this process
        self._active_lock = threading.Lock()
        # set when a submission thread could not write the ledger and could not keep the write pending either
        # (see Ledger.write_error for the writes kept); cleared by the next submission that writes all its steps
        self.ledger_error: str | None = None
        self._rendered: set[str] = set()  # pools whose launch a dry run has shown in full
        self.submitter = Submitter(
            self._submit, self._cancel, clock, settings.launch_interval, settings.launch_concurrency, inline
        )

    def being_submitted(self) -> set[str]:
        """The ids of the launches this process is submitting now (a copy)."""
        with self._active_lock:
            return set(self.active)

    def act(self, the_plan: Plan, workers: Mapping[str, Sequence[Worker] | None], now: float, cycle: int) -> None:
        latest: dict[str, dict[str, str]] = {}  # queue -> worker -> its latest task, made for the queues launched on
        for i, planned in enumerate(the_plan.launches):
            if self.dry_run or self.ledger is None:
                self._would_launch(planned, f"dry-{cycle}-{i}")
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
        target = pool.target(planned.udid)
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
        and frees its phone; a ledger that cannot be written stops the watchdog (see ``Provisioner.run``)."""
        started = self.mono()
        with self._active_lock:
            self.active.add(launch.id)
        try:
            self._submit_one(launch, started)
            self.ledger_error = None
        except Fenced as exc:  # another daemon leads now: it cancels this launch (never submitted)
            logger.warning("launch {} for pool {}: not submitted: {}", launch.id[:8], launch.pool, exc)
        except Exception as exc:  # noqa: BLE001 - never lose a launch in a thread pool's silence
            detail = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])[:500]
            logger.error("launch {} for pool {}: submission failed: {}", launch.id[:8], launch.pool, detail)
            try:
                self.failed.mark(launch.id, self.mono())
                self._write(self.ledger.update, launch.id, LaunchState.FAILED, self.clock.now(), keep=True,
                            detail=detail)
            except Exception as again:  # noqa: BLE001
                self.ledger_error = redact(f"{type(again).__name__}: {again}".splitlines()[0])[:300]
                logger.error("ledger cannot be written: {}; the watchdog is no longer fed", self.ledger_error)
        finally:
            with self._active_lock:
                self.active.discard(launch.id)

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
        now, mono = self.clock.now(), self.mono()
        took = mono - started
        target = pool.target(launch.udid)
        if result.ok and result.job_id:
            if self.ledger.known_job_ids([result.job_id]):
                result = LaunchResult(False, detail=f"job id {result.job_id} is already recorded for another launch")
        if result.ok and result.job_id:
            self.sent.mark(launch.id, mono)  # before the write: reconcile may read the launch at once
            # reconcile may have seen the job already (running, even ended): never move it back
            # the job exists: memory holds it whatever the database says (a refused write stays pending)
            if not self._write(self.ledger.update, launch.id, LaunchState.STARTING, now, keep=True,
                               only_from=LaunchState.SUBMITTING, job_id=result.job_id, detail=result.url, sent_at=now,
                               submit_seconds=took):
                self._write(self.ledger.mark, launch.id, keep=True, sent_at=now, submit_seconds=took)
            logger.info("launched job {} for pool {} on {} {}", result.job_id, pool.name, target, result.url)
            self.hooks("provisioner_launch_submitted", launch=self.ledger.get(launch.id), result=result)
        else:
            detail = redact(result.detail or "launcher reported success without a job id")
            self.failed.mark(launch.id, mono)
            self._write(self.ledger.update, launch.id, LaunchState.FAILED, now, keep=True, detail=detail[-2000:],
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
