"""Warmth: each pool's warm target this cycle (see ``provisioner.warm``), from the arrivals at its queue.

Owns the arrivals measured per queue (for ``warm = "auto"``). May not touch: the ledger, the remote services, the
launches in flight; the claims it counts and the launch-to-claim time come from ``accounting``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from ..config import Settings
from ..model import Pool, QueueCounts
from ..warm import Arrivals, warm_target


class WarmTargets:
    """``targets(counts, claims, now)`` once a cycle."""

    def __init__(self, settings: Settings, pools: Mapping[str, Pool], claim_estimate: Callable[[str, float], float]) -> None:
        self.settings, self.pools, self.claim_estimate = settings, pools, claim_estimate
        self.arrivals = Arrivals(settings.warm_window_seconds)  # per queue, for warm = "auto"

    def targets(self, counts: Mapping[str, QueueCounts | None], claims: Counter[str], now: float,
                mono: float | None = None) -> dict[str, int]:
        """Each pool's warm target this cycle (see ``warm``); the arrivals at an ``auto`` pool's queue are measured
        first (a queue has one pool), their intervals on the monotonic clock (``mono``; ``now`` if not given).
        ``claims``: the claims seen per pool since the last call."""
        mono = now if mono is None else mono
        targets = {}
        for pool in self.pools.values():
            if pool.warm == "auto":
                self.arrivals.observe(pool.queue, mono, counts.get(pool.queue), claims[pool.name])
            if pool.warm:
                targets[pool.name] = warm_target(pool, self.arrivals.likely_rate(pool.queue), self.claim_estimate(pool.name, now, mono),
                                                 self.settings.warm_safety_factor)
        return targets
