"""Decides which launches to make this cycle. A pure function of its inputs: no I/O, no clock, no globals.

For each pool: at most ``pending + warm - starting`` launches, on phones that are idle, belong to the pool, are
not quarantined in its queue, carry no launch in flight and are not held back. ``warm`` is the pool's warm
target (``Observation.warm``, computed by the loop): workers to keep started and waiting beyond the pending
tasks. Demand (``pending - starting``) is planned first for every pool, then the warm launches: a warm launch
never takes a phone that any pool's pending task could use this cycle. The warm launches go in two passes: first
each pool's expected demand (``Observation.warm_expected``: the part of an ``auto`` target that the tasks due
within one launch-to-claim time will take), then the margins beyond it, so one pool's margin never takes a phone
another pool's expected tasks need. In each pass, pools of higher priority
choose first; pools of equal priority take one phone each in turn, so none starves. Phones are picked least
recently used first, ties broken by a seeded shuffle, never in the provider's order. A pool whose cloud picks the
phone (``Pool.cloud_picks``: selector or group) plans launches that name none, each booked on an eligible phone of
the pool all the same; until the cloud says where one runs, it keeps one such phone aside in every cycle.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import add
from typing import NamedTuple

from .model import Limits, Phone, PhoneState, Plan, PlannedLaunch, Pool, PoolDecision, QueueCounts


class InFlight(NamedTuple):
    """A launch the host made (ledger) or a live job the provider reports, not yet ended. (A tuple: there are
    tens of thousands a cycle on a large fleet.)"""

    pool: str
    udid: str  # empty: a launch whose cloud picks the phone (selector, group), not yet placed on one
    starting: bool  # covers a pending task: its worker has not claimed one yet
    since: float  # when it was sent (or created, for a provider's job): monotonic, as ``plan``'s ``now``
    unsubmitted: bool = False  # queued or being submitted: starting, however long the queue takes
    max_startup: float | None = None  # its own limit instead of ``Limits.max_startup_seconds`` (a warm launch waits)


@dataclass(frozen=True)
class Observation:
    """What one cycle saw. ``None`` marks what is unknown this cycle."""

    counts: Mapping[str, QueueCounts | None]  # queue -> counts
    quarantined: Mapping[str, frozenset[str] | None]  # queue -> quarantined worker ids
    phones: Mapping[str, Sequence[Phone] | None]  # device provider -> phones
    in_flight: Sequence[InFlight] = ()
    held: Mapping[str, float] = field(default_factory=dict)  # udid -> held back until (monotonic)
    last_used: Mapping[str, float] = field(default_factory=dict)  # udid -> last launch on it
    warm: Mapping[str, int] = field(default_factory=dict)  # pool -> workers to keep waiting beyond pending (0)
    warm_expected: Mapping[str, int] = field(default_factory=dict)  # pool -> of those, its expected demand (0)


def plan(pools: Sequence[Pool], obs: Observation, limits: Limits, now: float, seed: int = 0) -> Plan:
    """What to launch this cycle. ``now`` is a time on the monotonic clock (the loop's ``mono``), as
    ``InFlight.since`` and ``Observation.held`` are; ``last_used`` is only ordered, never compared with it."""
    rng = random.Random(seed)
    starting_by_pool, unplaced_by_pool, booked = _in_flight(obs.in_flight, limits, now)
    total_starting = sum(starting_by_pool.values())
    held = {u for u, until in obs.held.items() if until > now}
    index = {provider: _Index(phones, booked, held) for provider, phones in obs.phones.items() if phones is not None}
    taken: dict[str, set[str]] = {provider: set() for provider in index}  # UDIDs launched on or set aside

    lines: dict[str, dict] = {}  # pool -> its line (see _observe_pool), its PoolDecision's fields
    wants: dict[str, int] = {}  # pool -> demand launches wanted
    warm_wants: dict[str, int] = {}  # pool -> warm launches wanted
    expected_wants: dict[str, int] = {}  # pool -> of those, the ones for its expected demand (planned first)
    # pool -> its phones in the order it takes them (see _picks). The generators share ``rng``: the seeded order
    # depends on the order in which they are read, which is itself fixed by the seed.
    picks: dict[str, Iterator[str]] = {}
    for pool in pools:
        pool_index = index.get(pool.device_provider)
        line = lines[pool.name] = _observe_pool(pool, obs, pool_index, starting_by_pool.get(pool.name, 0))
        demand, warm, reason = _want(pool, line)
        line["reason"] = reason  # until its launches are made (see _launching)
        if demand + warm > 0:
            picks[pool.name] = _picks(
                pool, pool_index, obs.quarantined[pool.queue], obs.last_used, taken[pool.device_provider], rng)
            if demand:
                wants[pool.name] = demand
            if warm:
                warm_wants[pool.name] = warm
                expected = min(obs.warm_expected.get(pool.name, 0), line["warm_target"])
                first = min(warm, line["pending"] + expected - line["starting"] - demand)
                if first > 0:
                    expected_wants[pool.name] = first
    # Launches not yet placed (the cloud picks: selector or group) will take some idle phone of their pool: keep that
    # many aside, the ones the pool would take itself if it launches and has any, else any of the pool's.
    for pool in pools:
        unplaced, pool_index = unplaced_by_pool.get(pool.name, 0), index.get(pool.device_provider)
        if unplaced and pool_index:
            free = list(chain.from_iterable(pool_index.groups(pool)))
            quarantined = obs.quarantined.get(pool.queue) or frozenset()
            own = pool.name in picks and any(u not in quarantined for u in free)
            pool_taken = taken[pool.device_provider]
            for udid in islice((u for u in (picks[pool.name] if own else free) if u not in pool_taken), unplaced):
                pool_taken.add(udid)

    budget = max(0, min(limits.max_launches_per_cycle, limits.max_starting - total_starting))
    launches: list[PlannedLaunch] = []
    by_name = {p.name: p for p in pools}
    made, budget = _fill(wants, "demand", by_name, picks, taken, budget, rng, launches)
    made_warm, budget = _fill(expected_wants, "warm", by_name, picks, taken, budget, rng, launches)
    margins = {name: n - made_warm[name] for name, n in warm_wants.items() if n > made_warm[name]}
    made_margin, budget = _fill(margins, "warm", by_name, picks, taken, budget, rng, launches)
    for name, n in made_margin.items():
        made_warm[name] += n

    cap = None if budget else (
        "global starting cap" if total_starting + len(launches) >= limits.max_starting else "cycle cap")
    out = []
    for pool in pools:
        line = lines[pool.name]
        n, w = made.get(pool.name, 0), made_warm.get(pool.name, 0)
        want = wants.get(pool.name, 0) + warm_wants.get(pool.name, 0)
        if want:
            line["reason"] = _launching(line, want, n + w, w, cap)
        pending = line["pending"]
        line["warm"] = None if pending is None else max(0, line["starting"] - pending)
        out.append(PoolDecision(pool=pool.name, launches=n + w, warm_launches=w, **line))
    return Plan(tuple(launches), tuple(out))


def _launching(line: dict, want: int, made: int, warm: int, cap: str | None) -> str:
    """Why a pool that wanted ``want`` launches has ``made`` (``warm`` of them warm); ``cap``: the cap the cycle
    reached, if any."""
    warm_note = f", {warm} warm" if warm else ""
    if made == want:
        return f"launching {made} for {line['pending']} pending, {line['starting']} starting{warm_note}"
    if cap:
        return f"launching {made} of {want}{warm_note}: {cap}"
    if made == 0:
        return f"{want} wanted, no eligible idle phone"
    return f"launching {made} of {want}{warm_note}: no more eligible idle phones"


def _fill(
    wants: Mapping[str, int], kind: str, by_name: Mapping[str, Pool], picks: Mapping[str, Iterator[str]],
    taken: Mapping[str, set[str]], budget: int, rng: random.Random, launches: list[PlannedLaunch],
) -> tuple[dict[str, int], int]:
    """One pass: pools by priority, taking turns within a priority, each up to its wants; returns what each made
    and the budget left. Phones taken join ``taken``; launches are appended to ``launches``."""
    made: dict[str, int] = defaultdict(int)
    if budget == 0:
        return made, 0
    tiers: dict[int, list[str]] = defaultdict(list)
    for name in wants:
        tiers[by_name[name].priority].append(name)
    for priority in sorted(tiers, reverse=True):
        active = tiers[priority]
        rng.shuffle(active)
        while active:
            still = []
            for name in active:
                pool = by_name[name]
                udid = next(picks[name], None)
                if udid is None:
                    continue
                taken[pool.device_provider].add(udid)
                launches.append(PlannedLaunch(name, "" if pool.cloud_picks else udid, kind))
                made[name] += 1
                budget -= 1
                if budget == 0:
                    return made, 0
                if made[name] < wants[name]:
                    still.append(name)
            active = still
    return made, budget


def _in_flight(in_flight: Sequence[InFlight], limits: Limits, now: float) -> tuple[dict, dict, set[str]]:
    """(launches starting per pool, of which not placed on a phone yet, the phones booked). A launch stops counting
    as starting once seen running, or after the maximum startup time, but its phone stays booked for as long as it
    is in flight at all. One pass that unpacks each tuple (a large fleet has tens of thousands in flight, scattered
    in memory: reading each once, without an attribute lookup per field, is what costs least)."""
    starting_by_pool: dict[str, int] = defaultdict(int)
    unplaced_by_pool: dict[str, int] = defaultdict(int)
    booked: set[str] = set()
    default = limits.max_startup_seconds
    for pool, udid, starting, since, unsubmitted, max_startup in in_flight:
        booked.add(udid)
        if starting and (unsubmitted or now - since < (default if max_startup is None else max_startup)):
            starting_by_pool[pool] += 1
            if not udid:
                unplaced_by_pool[pool] += 1
    booked.discard("")  # launches not placed yet (the cloud picks their phone)
    return starting_by_pool, unplaced_by_pool, booked


def _picks(
    pool: Pool, index: _Index, quarantined: frozenset[str], last_used: Mapping[str, float], taken: set[str],
    rng: random.Random,
) -> Iterator[str]:
    """The pool's free phones not quarantined in its queue, in the order it takes them: least recently used first,
    ties in a seeded random order (never the provider's), skipping those ``taken`` by then. A generator, so lazy
    twice over: nothing is ranked until the pool first takes a phone (with a cycle cap of 1,000 launches, most
    pools of a large fleet never get a turn), and a random draw is made only for each phone it gets to."""
    by_time: dict[float, list[str]] = defaultdict(list)  # last launch on it -> phones
    for group in index.groups(pool):
        for udid in group:
            if udid not in quarantined:
                by_time[last_used.get(udid, -math.inf)].append(udid)
    for when in sorted(by_time):
        for udid in _shuffled(by_time[when], rng):
            if udid not in taken:
                yield udid


def _shuffled(items: list[str], rng: random.Random) -> Iterator[str]:
    """``items`` in a random order, one draw per item taken (a Fisher-Yates shuffle, as far as it is read)."""
    for i in range(len(items)):
        j = rng.randrange(i, len(items))
        items[i], items[j] = items[j], items[i]
        yield items[i]


def _observe_pool(pool: Pool, obs: Observation, index: _Index | None, starting: int) -> dict:
    """The pool's line: pending and claimed, its phones idle, busy, quarantined and held (None: unknown), its
    launches starting and its warm target. Phones are counted per group (a kind, or a pool's own UDIDs) once a
    cycle, so that pools sharing a model cost no more than one pass over its phones."""
    counts = obs.counts.get(pool.queue)
    listed = obs.quarantined.get(pool.queue)
    idle = busy = q = h = None  # unknown, never 0, while the phones are
    if index is not None:
        tally = [0, 0, 0, 0]  # idle, busy, held, neither
        for group in index.groups(pool):
            tally = list(map(add, tally, group.counts))
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
        "warm_target": max(0, obs.warm.get(pool.name, 0)),
    }


class _Group(list):
    """What the pools' lines and candidates need of a group of phones (one kind: model and OS version; or a pool's
    own UDIDs), noted as it is made: the UDIDs of the free ones, in the provider's order (the list itself), and
    how many are in each other category (see _Index). Not the phones themselves: this is all a pool asks."""

    __slots__ = ("busy", "held", "neither")

    def __init__(self) -> None:
        super().__init__()
        self.busy = self.held = self.neither = 0

    def note(self, phone: Phone, category: int) -> None:
        if category == 0:
            self.append(phone.udid)
        elif category == 1:
            self.busy += 1
        elif category == 2:
            self.held += 1
        else:
            self.neither += 1

    @property
    def counts(self) -> tuple[int, int, int, int]:
        return len(self), self.busy, self.held, self.neither


class _Index:
    """A provider's phones in groups (one per model and OS version, or a pool's own UDIDs), made in one pass: a
    pool finds its own, and counts them, in time proportional to its groups, so planning stays linear in phones
    plus pools.

    A phone's category: 0 idle (free to take: idle, booked by no launch, not held), 1 busy (taken, or booked),
    2 held back, 3 neither (faulty, offline...)."""

    def __init__(self, phones: Sequence[Phone], booked: set[str], held: set[str]) -> None:
        self.all, self.booked, self.held = phones, booked, held
        self._by_udid: dict[str, Phone] | None = None
        self.by_kind = by_kind = defaultdict(_Group)
        idle, busy = PhoneState.IDLE, PhoneState.BUSY
        for phone in phones:  # group.note(phone, self.category(phone)), inlined (once per phone; a test holds
            # the two to the same categories)
            u, state, group = phone.udid, phone.state, by_kind[phone.model, phone.os_version]
            if u in held:
                group.held += 1
            elif state is busy or u in booked:  # a busy phone needs no lookup
                group.busy += 1
            elif state is idle:
                group.append(u)
            else:
                group.neither += 1
        self.by_model: dict[str, list[_Group]] = defaultdict(list)
        self.by_os: dict[str, list[_Group]] = defaultdict(list)
        for (model, os_version), group in by_kind.items():
            self.by_model[model].append(group)
            self.by_os[os_version].append(group)
        self._groups: dict[str, list[_Group]] = {}

    @property
    def by_udid(self) -> dict[str, Phone]:
        if self._by_udid is None:
            self._by_udid = {p.udid: p for p in self.all}
        return self._by_udid

    def groups(self, pool: Pool) -> list[_Group]:
        found = self._groups.get(pool.name)
        if found is None:
            found = self._groups[pool.name] = self._find(pool)
        return found

    def _find(self, pool: Pool) -> list[_Group]:
        if pool.udids:
            return [self._own(pool.udids)]
        s = pool.selector
        if s is None:
            return []
        if s.model and s.os_version:
            return [self.by_kind.get((s.model, s.os_version), _Group())]
        if s.model or s.os_version:
            return self.by_model.get(s.model, []) if s.model else self.by_os.get(s.os_version, [])
        return list(self.by_kind.values())

    def _own(self, udids: Iterable[str]) -> _Group:
        group = _Group()
        for u in udids:
            if u in self.by_udid:
                group.note(self.by_udid[u], self.category(self.by_udid[u]))
        return group

    def category(self, phone: Phone) -> int:
        u, state = phone.udid, phone.state
        if u in self.held:
            return 2
        if state is PhoneState.BUSY or u in self.booked:
            return 1
        return 0 if state is PhoneState.IDLE else 3


def _want(pool: Pool, line: dict) -> tuple[int, int, str]:
    """(demand launches, warm launches, why none): the pool wants ``pending + warm - starting`` launches, demand
    first (``pending - starting``), the rest warm, within its own cap on launches starting; none while its line
    has an unknown."""
    if not pool.enabled:
        return 0, 0, "disabled"
    if line["idle"] is None:
        return 0, 0, "phones or jobs unknown: no launch"
    if line["pending"] is None:
        return 0, 0, "pending unknown: no launch"
    if line["quarantined"] is None:
        return 0, 0, "quarantine unknown: no launch"
    pending, starting, warm = line["pending"], line["starting"], line["warm_target"]
    if pending == 0 and warm == 0:
        return 0, 0, "no task pending"
    total = pending + warm - starting
    if total <= 0:
        extra = f" and {warm} warm" if warm else ""
        return 0, 0, f"{starting} starting cover {pending} pending{extra}"
    demand = max(0, pending - starting)
    warm = total - demand
    if pool.max_starting is None:
        return demand, warm, ""
    room = max(0, pool.max_starting - starting)
    demand = min(demand, room)
    return demand, min(warm, room - demand), "" if room else f"pool cap: {starting} starting"
