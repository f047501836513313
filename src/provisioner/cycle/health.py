"""Health: which phones the planner must leave alone this cycle, and why.

Owns the backoff after a failed submission, the long hold after several in a row, the hold of a phone whose jobs
keep failing (recorded in the ledger), the holds an operator made by hand, and the log lines that say when a phone
is held back or released (once each). May not touch: the remote services, the launches in flight, the plan.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from ..config import Settings
from ..ledger import Ledger
from ..model import LaunchState


class Health:
    """``holds(now)`` (with why) and ``held_back(now)`` (until when), read from the ledger."""

    def __init__(self, settings: Settings, ledger: Ledger | None, dry_run: bool) -> None:
        self.settings, self.ledger, self.dry_run = settings, ledger, dry_run
        self._held_logged: set[str] = set()
        self._holds_seen: set[str] = set()  # phones under a recorded hold last cycle
        self._health: tuple[Any, Any, Any] = (None, {}, None)  # (ledger's health version, failures, failing jobs)

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
