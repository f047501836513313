"""Warmth: each pool's warm target this cycle (see ``provisioner.warm``), from the arrivals at its queue.

Owns the arrivals measured per queue (for ``warm = "auto"``). May not touch: the ledger, the remote services, the
launches in flight; the claims it counts and the launch-to-claim time come from ``accounting``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from ..config import Settings
from ..idle_outs import StartLearned
from ..ledger import Ledger
from ..model import Pool, QueueCounts
from ..warm import Arrivals, expected_demand, warm_target
from .accounting import ESTIMATE_REFRESH


class WarmTargets:
    """``targets(counts, claims, now, mono)`` once a cycle: ``now`` the wall time (the ledger's last day of claims and
    idle-outs reaches back from it), ``mono`` the monotonic time (the arrivals' intervals, the learned figures'
    refresh)."""

    def __init__(self, settings: Settings, pools: Mapping[str, Pool], claim_estimate: Callable[[str, float], float],
                 ledger: Ledger | None) -> None:
        self.settings, self.pools, self.claim_estimate = settings, pools, claim_estimate
        self.arrivals = Arrivals(settings.warm_window_seconds)  # per queue, for warm = "auto"
        self.start = StartLearned(ledger, ESTIMATE_REFRESH)  # per pool, for warm = "auto"

    def targets(self, counts: Mapping[str, QueueCounts | None], claims: Counter[str], now: float,
                mono: float | None = None) -> tuple[dict[str, int], dict[str, int]]:
        """Each pool's warm target this cycle and, of an ``auto`` one, its expected demand (see ``warm``); the
        arrivals at an ``auto`` pool's queue are measured first (a queue has one pool), their intervals on the
        monotonic clock (``mono``; ``now`` if not given). ``claims``: the claims seen per pool since the last call."""
        mono = now if mono is None else mono
        targets, expected = {}, {}
        for pool in self.pools.values():
            if pool.warm == "auto":
                self.arrivals.observe(pool.queue, mono, counts.get(pool.queue), claims[pool.name])
            if pool.warm:
                rate, claim = self.arrivals.likely_rate(pool.queue), self.claim_estimate(pool.name, now, mono)
                start = self.start.start_seconds(pool, claim, now, mono)
                targets[pool.name] = warm_target(pool, rate, claim, self.settings.warm_safety_factor, start)
                if pool.warm == "auto":
                    expected[pool.name] = expected_demand(rate, claim)
        return targets, expected
