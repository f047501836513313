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
    rank = _Ranks(obs.last_used, rng.random)  # udid -> its place in the order, drawn when first asked
    index: dict[str, _Index] = {}
    for provider, phones in obs.phones.items():
        if phones is not None:
            index[provider] = _Index(phones, booked, held)
            free[provider] = index[provider].free

    decisions: dict[str, dict] = {}
    wants: dict[str, int] = {}  # pool -> demand launches wanted
    warm_wants: dict[str, int] = {}  # pool -> warm launches wanted
    candidates: dict[str, list[str]] = {}
    for pool in pools:
        pool_index = index.get(pool.device_provider)
        d = _observe_pool(pool, obs, pool_index, booked, held, starting_by_pool[pool.name])
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
            mine = [p.udid for p in index[pool.device_provider].of(pool)
                    if p.udid in pool_free and p.udid not in quarantined]
            mine.sort(key=rank.__getitem__)  # only the candidates of pools that launch are ever ranked
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


def _observe_pool(pool: Pool, obs: Observation, index: _Index | None, booked, held, starting: int) -> dict:
    """The pool's line: pending and claimed, and its phones idle, busy, quarantined and held (None: unknown).
    Counted per group of phones (a kind, or a pool's own UDIDs) once a cycle, so that pools sharing a model cost
    no more than one pass over its phones."""
    counts = obs.counts.get(pool.queue)
    listed = obs.quarantined.get(pool.queue)
    idle = busy = q = h = None  # unknown, never 0, while the phones are
    if index is not None:
        tally = [0, 0, 0, 0]  # idle, busy, held, neither
        for group in index.groups(pool):
            for i, n in enumerate(index.counts(group)):
                tally[i] += n
        q = 0
        for udid in listed or ():  # few: take the pool's quarantined phones out of their state
            phone = index.by_udid.get(udid)
            if phone is not None and pool.owns(phone):
                tally[index.category(phone)] -= 1
                q += 1
        idle, busy, h = tally[0], tally[1], tally[2]
    return {
        "pending": counts.pending if counts else None,
        "claimed": counts.claimed if counts else None,
        "idle": idle, "busy": busy, "starting": starting, "quarantined": q if listed is not None else None, "held": h,
    }


class _Ranks(dict):
    """udid -> (last launch on it, a seeded random draw): least recently used first, ties in random order."""

    def __init__(self, last_used: Mapping[str, float], draw) -> None:
        super().__init__()
        self.last_used, self.draw = last_used, draw

    def __missing__(self, udid: str) -> tuple[float, float]:
        rank = self[udid] = (self.last_used.get(udid, float("-inf")), self.draw())
        return rank


class _Index:
    """A provider's phones, free or not, by UDID and in groups (one per model and OS version, or a pool's own
    UDIDs), made in one pass: a pool finds its own, and counts them, in time proportional to its groups, so
    planning stays linear in phones plus pools.

    A phone's category: 0 idle (free to take: idle, booked by no launch, not held), 1 busy (taken, or booked),
    2 held back, 3 neither (faulty, offline...)."""

    def __init__(self, phones: Sequence[Phone], booked: set[str], held: set[str]) -> None:
        self.all, self.booked, self.held = phones, booked, held
        self.free: dict[str, Phone] = {}
        self._by_udid: dict[str, Phone] | None = None
        self.by_kind: dict[tuple[str, str], list[Phone]] = defaultdict(list)
        self._counts: dict[int, list[int]] = {}
        idle, busy, free, by_kind = PhoneState.IDLE, PhoneState.BUSY, self.free, self.by_kind
        kind_counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for phone in phones:
            u, kind = phone.udid, (phone.model, phone.os_version)
            by_kind[kind].append(phone)
            if u in held:
                kind_counts[kind][2] += 1
            elif u in booked:
                kind_counts[kind][1] += 1
            elif phone.state is idle:
                free[u] = phone
                kind_counts[kind][0] += 1
            else:
                kind_counts[kind][1 if phone.state is busy else 3] += 1
        self._by_field: dict[tuple[int, str], list[list[Phone]]] = defaultdict(list)
        for kind, group in by_kind.items():
            self._counts[id(group)] = kind_counts[kind]
            self._by_field[0, kind[0]].append(group)
            self._by_field[1, kind[1]].append(group)
        self._groups: dict[str, list[list[Phone]]] = {}

    @property
    def by_udid(self) -> dict[str, Phone]:
        if self._by_udid is None:
            self._by_udid = {p.udid: p for p in self.all}
        return self._by_udid

    def groups(self, pool: Pool) -> list[list[Phone]]:
        found = self._groups.get(pool.name)
        if found is None:
            found = self._groups[pool.name] = self._find(pool)
        return found

    def of(self, pool: Pool) -> list[Phone]:
        return [p for group in self.groups(pool) for p in group]

    def _find(self, pool: Pool) -> list[list[Phone]]:
        if pool.udids:
            return [[self.by_udid[u] for u in pool.udids if u in self.by_udid]]
        s = pool.selector
        if s is None:
            return []
        if s.model and s.os_version:
            return [self.by_kind.get((s.model, s.os_version), [])]
        if s.model or s.os_version:
            return self._by_field.get((0, s.model) if s.model else (1, s.os_version), [])
        return list(self.by_kind.values())

    def category(self, phone: Phone) -> int:
        u = phone.udid
        if u in self.held:
            return 2
        if u in self.free:
            return 0
        return 1 if phone.state is PhoneState.BUSY or u in self.booked else 3

    def counts(self, group: list[Phone]) -> list[int]:
        """How many phones of ``group`` are in each category (a kind's were counted in the first pass)."""
        found = self._counts.get(id(group))
        if found is None:
            found = self._counts[id(group)] = [0, 0, 0, 0]
            for phone in group:
                found[self.category(phone)] += 1
        return found


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
