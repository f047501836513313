"""The loop: one cycle orders its rooms (``provisioner.cycle``), and the lease says whether to plan at all.

``Provisioner.cycle()`` reads every queue, phone and live job (``cycle.observe``), brings the ledger up to date
with what the providers report and says what each launch in flight covers (``cycle.accounting``), leaves out
the phones held back (``cycle.health``), sizes the warm workers (``cycle.warmth``), asks the pure planner what to
start (``planner.plan``), and writes each launch to the ledger and hands it to the submitter (``cycle.act``).
Submissions run on worker threads, paced, and never hold up the next observation. This module owns only the
order, the lease (a PostgreSQL ledger shared by several daemons), retention, the cycle's log lines and ``run``.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from . import notify
from .clock import Clock, monotonic_at, steady
from .config import Config
from .cycle.accounting import Accounting
from .cycle.act import Submissions
from .cycle.health import Health
from .cycle.hooks import Hooks
from .cycle.observe import Reader
from .cycle.warmth import WarmTargets
from .history import BATCH as PRUNE_BATCH
from .history import prune
from .ledger import Ledger
from .ledger.leadership import Lease, Role
from .logs import redact
from .model import Plan, PoolDecision, Pool, Worker
from .planner import Observation, plan
from .strangers import hold_first
from .plugins import Runtime
from .values import one_line


@dataclass
class CycleReport:
    """What one cycle saw and decided; handed to the ``provisioner_cycle`` hook."""

    cycle: int
    started_at: float  # the wall time the cycle began (recorded and shown; no interval is measured from it)
    plan: Plan
    unknown: list[str] = field(default_factory=list)  # one line per thing not known this cycle
    reads: dict[str, str] = field(default_factory=dict)  # "<plugin>: <endpoint>" -> ok | partial | error | plugin_error
    strangers: int = 0  # live jobs with our tag that no launch of ours knows (another daemon?)
    observe_seconds: float = 0.0
    plan_seconds: float = 0.0
    dry_run: bool = False
    active: bool = True  # False: a standby's cycle (observed, planned nothing)
    role: str = "active"
    ledger_error: str | None = None  # why the ledger cannot be written (no launch, no watchdog ping); None: it can

PRUNE_INTERVAL = 3600.0  # seconds between two foldings of old launches
PRUNE_BATCHES = 5  # batches of history.BATCH launches folded in one cycle at most


class Provisioner:
    """The daemon's loop. ``cycle()`` once; ``run(stop)`` until stopped. ``observation(now)`` is what a cycle plans
    from (``status`` shares it); ``holds(now)`` the phones held back, with why (``report``)."""

    def __init__(
        self, config: Config, runtime: Runtime, ledger: Ledger | None, clock: Clock, hook: Any = None,
        dry_run: bool = False, seed: int | None = None, inline: bool = False, lease: Lease | None = None,
    ) -> None:
        self.config, self.runtime, self.ledger, self.clock = config, runtime, ledger, clock
        self.monotonic = steady(clock)  # every wait and interval is on it (see provisioner.clock)
        self.settings = settings = config.settings
        self.pools: dict[str, Pool] = {p.name: p for p in runtime.pools}
        self.hooks = Hooks(hook)
        self.seed = seed if seed is not None else (settings.seed if settings.seed is not None else random.randrange(2**31))
        self.cycles = 0
        self._last_decisions: dict[str, PoolDecision] = {}  # each pool's last logged decision
        self._planned = False  # whether a cycle of this process planned launches it could make (see hold_first)
        self._pruned_at = float("-inf")
        # the rooms, each with its own state (see provisioner.cycle)
        self.reader = Reader(settings, runtime, self.pools)
        self.lease = lease if not dry_run else None  # None: always active (an SQLite ledger: one host)
        self.submissions = Submissions(settings, runtime, self.pools, ledger, clock, self.hooks, dry_run, inline, self.lease)
        self.accounting = Accounting(settings, self.pools, ledger, self.hooks, dry_run,
                                     self.submissions.being_submitted, clock.now(), clock, self.submissions.sent,
                                     self.reader.wall_of)
        self.health = Health(settings, ledger, dry_run, clock, self.submissions.failed)
        self.warmth = WarmTargets(settings, self.pools, self.accounting.claim_estimate, ledger)
        self.dry_run = dry_run
        # what the commands, the simulator, the benches and the tests call directly
        self.observe, self.reconcile = self.reader.observe, self.accounting.reconcile
        self.claim_estimate = self.accounting.claim_estimate
        self.holds, self.held_back = self.health.holds, self.health.held_back
        self.submitter = self.submissions.submitter
        self._active = self.submissions.active  # launches being submitted by this process
        self.role: Role | None = None if self.lease is not None else Role(True)
        if ledger is not None and not dry_run and self.lease is None:
            cancelled = ledger.recover(clock.now())
            kept = ledger.in_flight()
            if cancelled or kept:
                logger.info("ledger: {} launches still in flight loaded back, {} never submitted cancelled", len(kept), cancelled)

    @property
    def dry_run(self) -> bool:
        """Observe, plan and log; write no ledger, launch nothing (launchers render what they would run)."""
        return self._dry_run

    @dry_run.setter
    def dry_run(self, value: bool) -> None:
        self._dry_run = self.accounting.dry_run = self.health.dry_run = self.submissions.dry_run = value

    @property
    def ledger_error(self) -> str | None:
        """Why the ledger cannot be written (None: it can): writes memory holds that the database refused, kept
        and tried again (``Ledger.write_error``), or a submission's write that could not even be kept. While set,
        no launch is made and systemd's watchdog is not fed; it clears once a write succeeds again."""
        error = self.submissions.ledger_error or (self.ledger.write_error if self.ledger is not None else None)
        return None if error is None else redact(error)

    @ledger_error.setter
    def ledger_error(self, value: str | None) -> None:
        self.submissions.ledger_error = value

    @property
    def strangers(self) -> int:
        """Live jobs with our tag that no launch of ours knows, last cycle."""
        return self.accounting.strangers

    # -- one cycle -----------------------------------------------------------------------------------
    def observation(self, now: float, mono: float | None = None) -> tuple[
            Observation, list[str], Mapping[str, Sequence[Worker] | None]]:
        """What the planner plans from at ``now`` (wall) and ``mono`` (the monotonic clock then; by default, at
        the clock's present offset): the remote reads, the ledger brought up to date (in one transaction; a dry
        run writes nothing) and the phones held back. Its times (``in_flight``'s ``since``, ``held``) are on the
        monotonic clock: plan it at ``mono``. A cycle and ``provisioner status`` share it."""
        mono = monotonic_at(self.clock, now) if mono is None else mono
        obs, unknown, jobs, workers = self.observe(now, mono)
        in_flight = None
        try:
            with self.ledger.batch() if self.ledger is not None else contextlib.nullcontext():  # one transaction
                in_flight = self.reconcile(jobs, workers, now, mono)
        except Exception:
            if in_flight is None or self.ledger is None or self.ledger.write_error is None:
                raise
            # refused: the batch is kept pending (memory holds it) and tried again; plan from memory, launch nothing
        self.accounting.note_idle_workers(obs.phones, workers, in_flight)
        held = self.held_back(now, mono)  # after the batch: phone health reads this cycle's endings from disk
        warm, expected = self.warmth.targets(obs.counts, self.accounting.take_claims(), now, mono)
        obs = Observation(
            counts=obs.counts, quarantined=obs.quarantined, phones=obs.phones, in_flight=in_flight,
            held=held, last_used=self.ledger.last_used() if self.ledger is not None else {},
            warm=warm, warm_expected=expected,
        )
        return obs, unknown, workers

    def cycle(self) -> CycleReport:
        self.cycles += 1
        t0 = time.perf_counter()
        now, mono = self.clock.now(), self.monotonic()
        if self.lease is not None and not self._lead(now).active:
            return self._stand_by(now, t0)
        obs, unknown, workers = self.observation(now, mono)
        t1 = time.perf_counter()
        the_plan = plan(tuple(self.pools.values()), obs, self.settings.limits, mono, seed=self.seed + self.cycles)
        # writes refused and kept (a submission's own failure, not kept, clears with its next success: launches go on)
        refused = self.ledger.write_error if self.ledger is not None and not self.dry_run else None
        unwritable = redact(refused) if refused is not None else None
        would_launch = bool(the_plan.launches) and unwritable is None and self._jobs_known()
        if self.strangers and not self._planned:  # another daemon's jobs with our tag: none launched this cycle
            the_plan = hold_first(the_plan, self.strangers, self.settings.job_tag)
        self._planned = self._planned or would_launch  # the hold is spent only by a cycle that would launch
        if unwritable is not None:  # a launch is written before it is submitted: none can be now
            logger.error("ledger cannot be written: {}; no launch this cycle, the watchdog is not fed", unwritable)
            the_plan = Plan((), the_plan.decisions)
        t2 = time.perf_counter()
        report = CycleReport(self.cycles, now, the_plan, unknown, dict(self.reader.reads), self.strangers, t1 - t0, t2 - t1,
                             self.dry_run, ledger_error=self.ledger_error)
        for line in unknown:
            logger.warning("unknown this cycle: {}", line)
        capped, self.submitter.capped = self.submitter.capped, 0
        if capped:
            logger.info("launch rate capped by launch_concurrency ({}): {} submissions waited for a free slot",
                        self.settings.launch_concurrency, capped)
        self._log_decisions(the_plan, report)
        self.hooks("provisioner_cycle", report=report)
        self.act(the_plan, workers, now)
        if unwritable is None:
            self._retain(now, mono)
        return report

    def _jobs_known(self) -> bool:
        """Whether every provider's job list was read this cycle (an unknown one hides which phones jobs hold)."""
        return all(how == "ok" for read, how in self.reader.reads.items() if read.endswith(": jobs"))

    # -- leadership (a PostgreSQL ledger shared by several daemons) ---------------------------------------
    def _lead(self, now: float) -> Role:
        """Check the lease; on taking over, load the launches in flight (and cancel those never submitted); on
        losing it, forget them. One log line when the role changes."""
        assert self.lease is not None and self.ledger is not None
        was, role = self.role, self.lease.check(now)
        if role.active and (was is None or not was.active or was.epoch != role.epoch):
            try:
                self.ledger.take_over(self.settings.job_tag, role.epoch)
                self.accounting.launching_since = now
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
        _, unknown, _, _ = self.observe(now, self.monotonic())
        report = CycleReport(self.cycles, now, Plan((), ()), unknown, dict(self.reader.reads), 0,
                             time.perf_counter() - t0, 0.0, self.dry_run, active=False,
                             role=self.role.describe(_stamp))
        logger.info("standby cycle {}: {}", self.cycles, report.role)
        self.hooks("provisioner_cycle", report=report)
        return report

    def _retain(self, now: float, mono: float) -> None:
        """Fold launches past the retention horizon: every ``PRUNE_INTERVAL`` (monotonic), a few small batches a
        cycle."""
        if self.ledger is None or self.dry_run or mono - self._pruned_at < PRUNE_INTERVAL:
            return
        gone = prune(self.ledger, now, self.settings.retention_days, PRUNE_BATCHES)
        if gone < PRUNE_BATCHES * PRUNE_BATCH:  # all done until the next interval; else more next cycle
            self._pruned_at = mono
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

    def act(self, the_plan: Plan, workers: Mapping[str, Sequence[Worker] | None], now: float) -> None:
        """Write the plan's launches to the ledger and queue them for submission (a dry run: render them)."""
        self.submissions.act(the_plan, workers, now, self.cycles)

    # -- run -----------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, max_cycles: int | None = None, duration: float | None = None) -> None:
        start = self.monotonic()  # the cycle's pace and the run's length: on the monotonic clock
        try:
            self.runtime.start()  # once, before the first cycle: plugins' recovery from a crash
            while not stop.is_set():
                began = self.monotonic()
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
                if duration is not None and self.monotonic() - start >= duration:
                    break
                self.clock.sleep(max(0.0, began + self.settings.interval - self.monotonic()), stop)
        finally:
            self.submitter.close(cancel=stop.is_set())  # the submissions in flight return first,
            self.runtime.close()  # then each plugin object is closed, once


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)
