"""The policy of the production tool that came before, rebuilt from its published facts, for comparison.

What is known of it (DESIGN.md and the issue), and how each fact is reproduced here:

- a cycle every 10 s; the device list polled every 30 s (in between, the last list is used as it was);
- at most 10 launches per cycle, 2 s between launches, and a further 30 s wait after each batch;
- a launch is remembered for 210 s after it was made, then forgotten: while remembered it covers one pending
  task of its pool and books its phone. 210 s is production's usual time from launch to claim (the job
  `initiated`, then `running` while pre installs the worker): where the fleet is slower, a task whose worker
  has not claimed yet is launched for again, and that second job idles out (wasted);
- at most 40 launches starting (remembered) across all pools;
- no priorities: pools are served in the order the config lists them;
- the first free device in the API's order: ``active`` in the last list, owned by the pool, not booked;
- the launcher's output was never read: a launch counts as made whether the submission worked or not.

What is not known is filled in the way that favours the old tool: it reads quarantine nowhere (it had no such
notion) and, when a read fails, it skips that pool (counts) or that cycle (device list) rather than guessing.
Queue counts are read one queue per call, as the old tool did, so its remote calls per cycle grow with pools.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from ..clock import Clock
from ..model import LaunchRequest, Phone, PhoneState, Pool
from ..plugins import Runtime
from ..types import RemoteError


@dataclass(frozen=True)
class BaselineRules:
    cycle_seconds: float = 10.0
    poll_seconds: float = 30.0
    max_launches_per_cycle: int = 10
    launch_interval: float = 2.0
    batch_wait_seconds: float = 30.0
    forget_seconds: float = 210.0
    max_starting: int = 40


@dataclass
class BaselineCycle:
    """What one baseline cycle did, for the metrics (same fields the provisioner's observer records)."""

    started_at: float
    observed_at: float
    launches: int
    unknown: bool  # some read failed this cycle


class Baseline:
    def __init__(
        self, pools: tuple[Pool, ...], runtime: Runtime, clock: Clock, job_tag: str, rules: BaselineRules | None = None,
    ) -> None:
        self.pools, self.runtime, self.clock, self.job_tag = pools, runtime, clock, job_tag
        self.rules = rules or BaselineRules()
        self.remembered: list[tuple[float, str, str]] = []  # (made at, pool, udid)
        self.devices: dict[str, list[Phone]] = {}
        self.polled_at: dict[str, float] = {}
        self.cycles: list[BaselineCycle] = []
        self._n = 0

    def run(self, duration: float, on_cycle: Callable[[float], None] | None = None) -> None:
        start = self.clock.now()
        stop = threading.Event()
        while self.clock.now() - start < duration:
            began = self.clock.now()
            self.cycle()
            if on_cycle is not None:
                on_cycle(self.clock.now() - start)
            self.clock.sleep(max(0.0, began + self.rules.cycle_seconds - self.clock.now()), stop)

    def cycle(self) -> None:
        r = self.rules
        began = self.clock.now()
        self.remembered = [m for m in self.remembered if began - m[0] < r.forget_seconds]
        unknown = not self._poll(began)
        planned: list[tuple[Pool, str]] = []
        if not unknown:
            planned, unknown = self._plan()
        self.cycles.append(BaselineCycle(began, self.clock.now(), len(planned), unknown))
        for i, (pool, udid) in enumerate(planned):
            if i:
                self.clock.sleep(r.launch_interval)
            self._launch(pool, udid)
        if planned:
            self.clock.sleep(r.batch_wait_seconds)

    def _poll(self, now: float) -> bool:
        """Read each provider's device list if the last read is 30 s old; False when a read failed."""
        for name in sorted({p.device_provider for p in self.pools}):
            if now - self.polled_at.get(name, float("-inf")) < self.rules.poll_seconds:
                continue
            try:
                self.devices[name] = list(self.runtime.device_provider(name).phones())
            except RemoteError as exc:
                logger.debug("baseline: device list unknown: {}", exc)
                return False
            self.polled_at[name] = now
        return True

    def _plan(self) -> tuple[list[tuple[Pool, str]], bool]:
        r = self.rules
        budget = max(0, min(r.max_launches_per_cycle, r.max_starting - len(self.remembered)))
        booked = {udid for _, _, udid in self.remembered}
        planned: list[tuple[Pool, str]] = []
        unknown = False
        for pool in self.pools:
            if budget == 0:
                break
            counts = self.runtime.queue_source(pool.queue_source).counts([pool.queue]).get(pool.queue)
            if counts is None:
                unknown = True
                continue
            want = counts.pending - sum(1 for _, name, _ in self.remembered if name == pool.name)
            want -= sum(1 for p, _ in planned if p.name == pool.name)
            for phone in self.devices.get(pool.device_provider, []):
                if want <= 0 or budget == 0:
                    break
                if phone.state is PhoneState.IDLE and pool.owns(phone) and phone.udid not in booked:
                    booked.add(phone.udid)
                    planned.append((pool, phone.udid))
                    want -= 1
                    budget -= 1
        return planned, unknown

    def _launch(self, pool: Pool, udid: str) -> None:
        self._n += 1
        request = LaunchRequest(f"baseline-{self._n}", pool, udid, (self.job_tag, pool.name, udid))
        self.runtime.launcher(pool.launcher).launch(request)  # its result was never read
        self.remembered.append((self.clock.now(), pool.name, udid))
