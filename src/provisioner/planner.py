"""Decides which launches to make this cycle. A pure function of its inputs: no I/O, no clock, no globals.

For each pool: at most ``pending + warm - starting`` launches, on phones that are idle, belong to the pool, are
not quarantined in its queue, carry no launch in flight and are not held back. ``warm`` is the pool's warm
target (``Observation.warm``, computed by the loop): workers to keep started and waiting beyond the pending
tasks. Demand (``pending - starting``) is planned first for every pool, then the warm launches: a warm launch
never takes a phone that any pool's pending task could use this cycle. In each pass, pools of higher priority
choose first; pools of equal priority take one phone each in turn, so none starves. Phones are picked least
recently used first, ties broken by a seeded shuffle, never in the provider's order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .model import Limits, Phone, PhoneState, Plan, PlannedLaunch, Pool, PoolDecision, QueueCounts


class InFlight(NamedTuple):
    """A launch the host made (ledger) or a live job the provider reports, not yet ended. (A tuple: there are
    tens of thousands a cycle on a large fleet.)"""

    pool: str
    udid: str  # empty: a selector launch not yet placed on a phone
    starting: bool  # covers a pending task: its worker has not claimed one yet
    since: float  # when it was submitted (or created, for a provider's job)
    unsubmitted: bool = False  # queued or being submitted: starting, however long the queue takes
    max_startup: float | None = None  # its own limit instead of ``Limits.max_startup_seconds`` (a warm launch waits)


@dataclass(frozen=True)
class Observation:
    """What one cycle saw. ``None`` marks what is unknown this cycle."""

    counts: Mapping[str, QueueCounts | None]  # queue -> counts
    quarantined: Mapping[str, frozenset[str] | None]  # queue -> quarantined worker ids
    phones: Mapping[str, Sequence[Phone] | None]  # device provider -> phones
    in_flight: Sequence[InFlight] = ()
    held: Mapping[str, float] = field(default_factory=dict)  # udid -> held back until
    last_used: Mapping[str, float] = field(default_factory=dict)  # udid -> last launch on it
    warm: Mapping[str, int] = field(default_factory=dict)  # pool -> workers to keep waiting beyond pending (0)


def plan(pools: Sequence[Pool], obs: Observation, limits: Limits, now: float, seed: int = 0) -> Plan:
    rng = random.Random(seed)
    starting_by_pool: dict[str, int] = defaultdict(int)
    unplaced_by_pool: dict[str, int] = defaultdict(int)
    booked: set[str] = set()
    for f in obs.in_flight:
        # A launch stops counting as starting once seen running, or after the maximum startup time...
        limit = limits.max_startup_seconds if f.max_startup is None else f.max_startup
        starting = f.starting and (f.unsubmitted or now - f.since < limit)
        if starting:
            starting_by_pool[f.pool] += 1
        # ...but its phone stays booked for as long as it is in flight at all.
        if f.udid:
            booked.add(f.udid)
        elif starting:
            unplaced_by_pool[f.pool] += 1
    total_starting = sum(starting_by_pool.values())
    held = {u for u, until in obs.held.items() if until > now}

    # One global order of phones: least recently used first, ties in a seeded random order.
    free: dict[str, dict[str, Phone]] = {}  # provider -> udid -> idle phone with nothing in flight
    rank: dict[str, dict[str, tuple[float, float]]] = {}  # provider -> udid -> its place in the order
    index: dict[str, _Index] = {}
    never, last_used, draw, idle = float("-inf"), obs.last_used, rng.random, PhoneState.IDLE
    for provider, phones in obs.phones.items():
        if phones is None:
            continue
        mine = free[provider] = {}
        ranks = rank[provider] = {}
        index[provider] = _Index(phones)
        for phone in phones:  # only free phones are ranked: they are the only ones a launch may take
            u = phone.udid
            if phone.state is idle and u not in booked and u not in held:
                mine[u] = phone
                ranks[u] = (last_used.get(u, never), draw())

    decisions: dict[str, dict] = {}
    wants: dict[str, int] = {}  # pool -> demand launches wanted
    warm_wants: dict[str, int] = {}  # pool -> warm launches wanted
    candidates: dict[str, list[str]] = {}
    for pool in pools:
        pool_phones = index[pool.device_provider].of(pool) if pool.device_provider in index else None
        d = _observe_pool(pool, obs, pool_phones, free, booked, held, starting_by_pool[pool.name])
        d["warm_target"] = target = max(0, obs.warm.get(pool.name, 0))
        decisions[pool.name] = d
        demand, warm, reason = _want(pool, obs, d, target)
        if demand + warm > 0 and pool.max_starting is not None:
            room = max(0, pool.max_starting - d["starting"])
            if room == 0:
                reason = f"pool cap: {d['starting']} starting"
            demand = min(demand, room)
            warm = min(warm, room - demand)
        d["reason"] = reason
        if demand + warm > 0:
            quarantined = obs.quarantined.get(pool.queue) or frozenset()
            pool_free = free[pool.device_provider]
            mine = [p.udid for p in pool_phones if p.udid in pool_free and p.udid not in quarantined]
            mine.sort(key=rank[pool.device_provider].__getitem__)
            candidates[pool.name] = mine
            if demand:
                wants[pool.name] = demand
            if warm:
                warm_wants[pool.name] = warm
    # Selector launches not yet placed will take some matching idle phone: keep that many aside.
    for pool in pools:
        for _ in range(unplaced_by_pool[pool.name]):
            if pool.device_provider not in index:
                break
            mine = candidates.get(pool.name) or [p.udid for p in index[pool.device_provider].of(pool)]
            taken = next((u for u in mine if u in free.get(pool.device_provider, {})), None)
            if taken is None:
                break
            del free[pool.device_provider][taken]

    budget = max(0, min(limits.max_launches_per_cycle, limits.max_starting - total_starting))
    launches: list[PlannedLaunch] = []
    by_name = {p.name: p for p in pools}
    cut_by_budget: set[str] = set()
    made, budget = _fill(wants, "demand", by_name, candidates, free, budget, rng, launches, cut_by_budget)
    made_warm, budget = _fill(warm_wants, "warm", by_name, candidates, free, budget, rng, launches, cut_by_budget)

    out = []
    for pool in pools:
        d = decisions[pool.name]
        n, w = made[pool.name], made_warm[pool.name]
        if pool.name in wants or pool.name in warm_wants:
            want = wants.get(pool.name, 0) + warm_wants.get(pool.name, 0)
            warm_note = f", {w} warm" if w else ""
            if n + w == want:
                d["reason"] = f"launching {n + w} for {d['pending']} pending, {d['starting']} starting{warm_note}"
            elif pool.name in cut_by_budget or (budget == 0 and n + w < want):
                d["reason"] = f"launching {n + w} of {want}{warm_note}: " + (
                    "global starting cap" if total_starting + len(launches) >= limits.max_starting else "cycle cap"
                )
            elif n + w == 0:
                d["reason"] = f"{want} wanted, no eligible idle phone"
            else:
                d["reason"] = f"launching {n + w} of {want}{warm_note}: no more eligible idle phones"
        pending = d["pending"]
        d["warm"] = None if pending is None else max(0, d["starting"] - pending)
        out.append(PoolDecision(pool=pool.name, launches=n + w, warm_launches=w, **d))
    return Plan(tuple(launches), tuple(out))


def _fill(
    wants: Mapping[str, int], kind: str, by_name: Mapping[str, Pool], candidates: Mapping[str, list[str]],
    free: dict[str, dict[str, Phone]], budget: int, rng: random.Random, launches: list[PlannedLaunch],
    cut_by_budget: set[str],
) -> tuple[dict[str, int], int]:
    """One pass: pools by priority, taking turns within a priority, each up to its wants; returns what each made
    and the budget left. Phones taken leave ``free``; launches are appended to ``launches``."""
    made: dict[str, int] = defaultdict(int)
    tiers: dict[int, list[str]] = defaultdict(list)
    for name in wants:
        tiers[by_name[name].priority].append(name)
    for priority in sorted(tiers, reverse=True):
        turn = tiers[priority]
        rng.shuffle(turn)
        cursor = {name: 0 for name in turn}
        active = list(turn)
        while active:
            still = []
            for name in active:
                pool = by_name[name]
                if budget == 0:
                    cut_by_budget.add(name)
                    continue
                pool_free = free[pool.device_provider]
                mine, i = candidates[name], cursor[name]
                while i < len(mine) and mine[i] not in pool_free:
                    i += 1
                if i == len(mine):
                    continue
                udid = mine[i]
                cursor[name] = i + 1
                del pool_free[udid]
                launches.append(PlannedLaunch(name, "" if pool.targeting == "selector" else udid, kind))
                made[name] += 1
                budget -= 1
                if made[name] < wants[name]:
                    still.append(name)
            active = still
    return made, budget


def _observe_pool(pool: Pool, obs: Observation, phones, free, booked, held, starting: int) -> dict:
    counts = obs.counts.get(pool.queue)
    listed = obs.quarantined.get(pool.queue)
    quarantined = listed or frozenset()
    idle = busy = q = h = None  # unknown, never 0, while the phones are
    if phones is not None:
        idle = busy = q = h = 0
        pool_free = free.get(pool.device_provider, {})
        for phone in phones:
            if phone.udid in quarantined:
                q += 1
            elif phone.udid in held:
                h += 1
            elif phone.udid in pool_free:
                idle += 1
            elif phone.state is PhoneState.BUSY or phone.udid in booked:
                busy += 1
    return {
        "pending": counts.pending if counts else None,
        "claimed": counts.claimed if counts else None,
        "idle": idle, "busy": busy, "starting": starting, "quarantined": q if listed is not None else None, "held": h,
    }


class _Index:
    """A provider's phones by UDID and by model and OS version, so that a pool finds its own in time proportional
    to their number: planning stays linear in phones plus pools."""

    def __init__(self, phones: Sequence[Phone]) -> None:
        self.all = phones
        self._by_udid: dict[str, Phone] | None = None
        self._by_kind: dict[tuple[str, str], list[Phone]] | None = None
        self._by_field: dict[tuple[int, str], list[list[Phone]]] = {}
        self._of: dict[str, list[Phone]] = {}

    @property
    def by_udid(self) -> dict[str, Phone]:
        if self._by_udid is None:
            self._by_udid = {p.udid: p for p in self.all}
        return self._by_udid

    @property
    def by_kind(self) -> dict[tuple[str, str], list[Phone]]:
        """Phones by (model, OS version): few kinds, many phones. ``_by_field``: a model's (or an OS version's)
        kinds, for a selector that names one field only."""
        if self._by_kind is None:
            self._by_kind = defaultdict(list)
            for p in self.all:
                self._by_kind[p.model, p.os_version].append(p)
            self._by_field = defaultdict(list)
            for kind, ps in self._by_kind.items():
                self._by_field[0, kind[0]].append(ps)
                self._by_field[1, kind[1]].append(ps)
        return self._by_kind

    def of(self, pool: Pool) -> list[Phone]:
        found = self._of.get(pool.name)
        if found is None:
            found = self._of[pool.name] = self._find(pool)
        return found

    def _find(self, pool: Pool) -> list[Phone]:
        if pool.udids:
            return [self.by_udid[u] for u in pool.udids if u in self.by_udid]
        s = pool.selector
        if s is None:
            return []
        if s.model and s.os_version:
            return list(self.by_kind.get((s.model, s.os_version), ()))
        if s.model or s.os_version:
            self.by_kind  # noqa: B018 - builds _by_field
            kinds = self._by_field.get((0, s.model) if s.model else (1, s.os_version), ())
            return [p for ps in kinds for p in ps]
        return list(self.all)


def _want(pool: Pool, obs: Observation, d: dict, warm: int) -> tuple[int, int, str]:
    """(demand launches, warm launches, why none): the pool wants ``pending + warm - starting`` launches, demand
    first (``pending - starting``), the rest warm."""
    if not pool.enabled:
        return 0, 0, "disabled"
    if obs.phones.get(pool.device_provider) is None:
        return 0, 0, "phones or jobs unknown: no launch"
    if obs.counts.get(pool.queue) is None:
        return 0, 0, "pending unknown: no launch"
    if obs.quarantined.get(pool.queue) is None:
        return 0, 0, "quarantine unknown: no launch"
    pending, starting = d["pending"], d["starting"]
    if pending == 0 and warm == 0:
        return 0, 0, "no task pending"
    total = pending + warm - starting
    if total <= 0:
        extra = f" and {warm} warm" if warm else ""
        return 0, 0, f"{starting} starting cover {pending} pending{extra}"
    demand = max(0, pending - starting)
    return demand, total - demand, ""
