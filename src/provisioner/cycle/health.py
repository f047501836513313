"""Health: which phones the planner must leave alone this cycle, and why.

Owns the backoff after a failed submission, the long hold after several in a row, the hold of a phone whose jobs
keep failing (recorded in the ledger), the holds an operator made by hand, and the log lines that say when a phone
is held back or released (once each). May not touch: the remote services, the launches in flight, the plan.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from ..clock import Anchors, Clock, monotonic_at
from ..config import Settings
from ..ledger import Ledger
from ..logs import redact
from ..model import LaunchState
from ..values import one_line


class Health:
    """``holds(now)`` (with why, until a wall time for display) and ``held_back(now)`` (until a monotonic time,
    for the planner), read from the ledger.

    How long a backoff or a hold lasts is measured on the monotonic clock, from the moment its cause happened: a
    failed submission of this process (marked by the submitter in ``failed``), else the wall-clock age of the
    failure or the hold when first read. A phone held stays held until then, whatever the wall clock does
    meanwhile (a step forward empties the ledger's windows, read in wall time): only an operator's release ends
    it sooner."""

    def __init__(self, settings: Settings, ledger: Ledger | None, dry_run: bool, clock: Clock,
                 failed: Anchors | None = None) -> None:
        self.settings, self.ledger, self.dry_run, self.clock = settings, ledger, dry_run, clock
        self.failed = failed if failed is not None else Anchors()  # failed launch id -> monotonic time
        self._recorded = Anchors()  # a recorded hold's row id -> the monotonic time of its ``since``
        self._prune_at = 1000  # anchors kept before the long past ones are forgotten (doubles: amortized)
        self._kept: dict[str, tuple[float, str]] = {}  # last cycle's holds: udid -> (until, monotonic; why)
        self._released: dict[str, float] | None = None  # the operator's releases seen last cycle
        self._held_logged: set[str] = set()
        self._holds_seen: set[str] = set()  # phones under a recorded hold last cycle
        self._health: tuple[Any, Any, Any] = (None, {}, None)  # (ledger's health version, failures, failing jobs)

    def held_back(self, now: float, mono: float | None = None) -> dict[str, float]:
        """Phones to leave alone: udid -> until when, on the monotonic clock (``mono`` is its time at ``now``).
        See ``holds``."""
        mono = monotonic_at(self.clock, now) if mono is None else mono
        return {udid: until for udid, (until, _) in self._current(now, mono).items()}

    def holds(self, now: float, mono: float | None = None) -> dict[str, tuple[float, str]]:
        """Phones to leave alone, with why: udid -> (until, as a wall time from ``now``; reason).

        After failed submissions, a backoff after each and a long hold after several in a row; a phone whose jobs
        keep failing is held (and the hold recorded in the ledger); and the holds an operator made by hand.
        An operator's release forgives every failure before it.
        """
        mono = monotonic_at(self.clock, now) if mono is None else mono
        return {udid: (now + (until - mono), why) for udid, (until, why) in self._current(now, mono).items()}

    def _current(self, now: float, mono: float) -> dict[str, tuple[float, str]]:
        if self.ledger is None:
            return {}
        s = self.settings
        held: dict[str, tuple[float, str]] = {}
        released = self.ledger.releases()
        if self._released is not None and released != self._released:  # an operator released a phone since
            for udid in released.keys() | self._released.keys():
                if released.get(udid) != self._released.get(udid):
                    self._kept.pop(udid, None)
        self._released = released
        # A phone whose last failed submission is older than the longest hold or backoff is held by none.
        longest = max(s.hold_seconds, s.retry_backoff_seconds * 2 ** (s.failures_before_hold - 1))
        horizon = now - longest
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
            last = self.failed.of(recent[0].id, recent[0].updated_at, now, mono)
            if run >= s.failures_before_hold:
                until = last + s.hold_seconds
                if until > mono and udid not in self._held_logged:
                    self._held_logged.add(udid)
                    logger.warning("phone {} held back for {:.0f} s after {} failed launches in a row", udid, until - mono, run)
            else:
                until = last + s.retry_backoff_seconds * 2 ** (run - 1)
            if until > mono:
                held[udid] = (until, f"{run} failed submission{'s' if run > 1 else ''} in a row")
        self._held_logged &= set(held)  # a phone held again later is logged again
        if not self.dry_run and self._health[2] is None:
            failing = self.ledger.failing_jobs(
                s.job_failure_outcomes, now - s.job_failure_window_seconds, s.job_failures_before_hold
            )
            self._health = (self._health[0], self._health[1], failing)
            for udid, (run, _) in failing.items():
                if udid in self._holds_seen:  # held for its jobs already (a wall step back shows the run again)
                    continue
                reason = f"{run} failed jobs in a row"
                try:  # refused by the database: kept pending (the loop launches nothing until it is written)
                    self.ledger.hold(udid, now, now + s.job_failure_hold_seconds, "jobs", reason, keep=True)
                except Exception as exc:  # noqa: BLE001 - fenced (another daemon leads): not ours to record now
                    logger.error("phone {}: its hold could not be recorded: {}; tried again next cycle", udid,
                                 redact(one_line(str(exc)))[:300])
                    self._health = (None, {}, None)  # read again, and the hold made again, next cycle
                    break
                logger.warning("phone {} held back for {:.0f} s after {}", udid, s.job_failure_hold_seconds, reason)
        recorded = self.ledger.holds(now)
        for hold in recorded:
            until = self._recorded.of(hold.id, hold.since, now, mono) + (hold.until - hold.since)
            if until > mono and until > held.get(hold.udid, (0.0, ""))[0]:
                why = "held by hand" if hold.source == "manual" else "held"
                held[hold.udid] = (until, f"{why}: {hold.reason}" if hold.reason else why)
        for udid in self._holds_seen - {h.udid for h in recorded}:
            logger.info("phone {} is no longer held back", udid)
        self._holds_seen = {h.udid for h in recorded}
        # what held a phone last cycle holds it until its time is up, though a step of the wall clock moved the
        # ledger's windows past its cause (a release ends it: see above)
        for udid, (until, why) in self._kept.items():
            if until > mono and until > held.get(udid, (0.0, ""))[0]:
                held[udid] = (until, why)
        self._kept = held
        if len(self.failed.at) + len(self._recorded.at) > self._prune_at:  # now and then: forget the long past
            gone = mono - longest - max(s.job_failure_hold_seconds, 86400.0)
            self.failed.keep(lambda _, at: at > gone)
            self._recorded.keep(lambda _, at: at > gone)
            self._prune_at = max(1000, 2 * (len(self.failed.at) + len(self._recorded.at)))
        return held
