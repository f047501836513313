"""The planner: examples for each rule, and hypothesis properties for the invariants."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.model import Limits, Phone, PhoneState, Pool, QueueCounts, Selector
from provisioner.planner import InFlight, Observation, plan

NOW = 1_000_000.0
LIMITS = Limits(max_launches_per_cycle=1000, max_starting=1000, max_startup_seconds=900)


def pool(name="p", queue="q", udids=(), selector=None, priority=0, **kw) -> Pool:
    return Pool(name, queue, "src", "prov", "launch", tuple(udids), selector, priority=priority, **kw)


def phones(*udids, state=PhoneState.IDLE, model="A55", os="14"):
    return [Phone(u, model, os, state) for u in udids]


def obs(counts, phone_list, quarantined=None, **kw) -> Observation:
    return Observation(
        counts={q: (QueueCounts(*c) if c is not None else None) for q, c in counts.items()},
        quarantined=quarantined if quarantined is not None else {q: frozenset() for q in counts},
        phones={"prov": phone_list}, **kw,
    )


def test_launches_up_to_pending_minus_starting():
    p = pool(udids=[f"u{i}" for i in range(10)])
    o = obs({"q": (5, 0)}, phones(*[f"u{i}" for i in range(10)]), in_flight=[InFlight("p", "u0", True, NOW - 10)])
    result = plan([p], o, LIMITS, NOW)
    assert len(result.launches) == 4
    assert "u0" not in {launch.udid for launch in result.launches}
    assert result.decisions[0].starting == 1


def test_starting_expires_after_max_startup_but_the_phone_stays_booked():
    p = pool(udids=["a", "b"])
    o = obs({"q": (1, 0)}, phones("a", "b"), in_flight=[InFlight("p", "a", True, NOW - 901)])
    result = plan([p], o, LIMITS, NOW)
    assert [launch.udid for launch in result.launches] == ["b"]
    # a launch still waiting to be submitted counts as starting however long the queue takes
    o = obs({"q": (1, 0)}, phones("a", "b"), in_flight=[InFlight("p", "a", True, NOW - 5000, unsubmitted=True)])
    assert plan([p], o, LIMITS, NOW).launches == ()


def test_running_launch_books_the_phone_but_is_not_starting():
    p = pool(udids=["a", "b"])
    o = obs({"q": (2, 0)}, phones("a", "b"), in_flight=[InFlight("p", "a", False, NOW - 5000)])
    result = plan([p], o, LIMITS, NOW)
    assert [launch.udid for launch in result.launches] == ["b"]


def test_unknown_pending_means_no_launch_for_that_pool_only():
    a, b = pool("a", "qa", udids=["x"]), pool("b", "qb", udids=["y"])
    result = plan([a, b], obs({"qa": None, "qb": (3, 0)}, phones("x", "y")), LIMITS, NOW)
    assert [launch.pool for launch in result.launches] == ["b"]
    assert "unknown" in result.decisions[0].reason


def test_unknown_phone_list_means_no_launch_at_all():
    a = pool("a", "qa", udids=["x"])
    o = Observation({"qa": QueueCounts(3, 0)}, {"qa": frozenset()}, {"prov": None})
    result = plan([a], o, LIMITS, NOW)
    assert result.launches == ()
    assert "phones or jobs unknown" in result.decisions[0].reason


def test_unknown_quarantine_means_no_launch():
    a = pool("a", "qa", udids=["x"])
    result = plan([a], obs({"qa": (3, 0)}, phones("x"), quarantined={"qa": None}), LIMITS, NOW)
    assert result.launches == ()


def test_ineligible_phones_are_skipped():
    p = pool(udids=["idle", "busy", "bad", "quar", "held", "flying"])
    ps = phones("idle", "quar", "held", "flying") + phones("busy", state=PhoneState.BUSY) + phones(
        "bad", state=PhoneState.UNAVAILABLE
    )
    o = obs(
        {"q": (10, 0)}, ps + phones("stranger"), quarantined={"q": frozenset({"quar"})},
        held={"held": NOW + 10}, in_flight=[InFlight("other", "flying", False, NOW)],
    )
    result = plan([p], o, LIMITS, NOW)
    assert [launch.udid for launch in result.launches] == ["idle"]
    d = result.decisions[0]
    assert (d.idle, d.quarantined, d.held) == (1, 1, 1)


def test_hold_expires():
    p = pool(udids=["a"])
    result = plan([p], obs({"q": (1, 0)}, phones("a"), held={"a": NOW - 1}), LIMITS, NOW)
    assert len(result.launches) == 1


def test_higher_priority_pool_gets_shared_phones_first():
    shared = [f"s{i}" for i in range(4)]
    hi, lo = pool("hi", "qh", udids=shared, priority=10), pool("lo", "ql", udids=shared)
    result = plan([lo, hi], obs({"qh": (3, 0), "ql": (3, 0)}, phones(*shared)), LIMITS, NOW)
    assert Counter(launch.pool for launch in result.launches) == {"hi": 3, "lo": 1}


def test_equal_priorities_share_fairly():
    shared = [f"s{i}" for i in range(6)]
    a, b = pool("a", "qa", udids=shared), pool("b", "qb", udids=shared)
    result = plan([a, b], obs({"qa": (10, 0), "qb": (10, 0)}, phones(*shared)), LIMITS, NOW)
    assert Counter(launch.pool for launch in result.launches) == {"a": 3, "b": 3}


def test_caps():
    ids = [f"u{i}" for i in range(20)]
    p = pool(udids=ids, max_starting=5)
    o = obs({"q": (20, 0)}, phones(*ids), in_flight=[InFlight("p", "u0", True, NOW)])
    assert len(plan([p], o, LIMITS, NOW).launches) == 4
    assert len(plan([pool(udids=ids)], o, Limits(3, 100, 900), NOW).launches) == 3
    assert len(plan([pool(udids=ids)], o, Limits(100, 7, 900), NOW).launches) == 6


def test_disabled_pool_gets_nothing():
    p = pool(udids=["a"], enabled=False)
    result = plan([p], obs({"q": (1, 0)}, phones("a")), LIMITS, NOW)
    assert result.launches == () and result.decisions[0].reason == "disabled"


def test_selector_pool_and_selector_targeting():
    ps = phones("a1", "a2") + phones("p1", model="Pixel")
    p = pool(selector=Selector(model="A55"), targeting="selector")
    result = plan([p], obs({"q": (5, 0)}, ps), LIMITS, NOW)
    assert [launch.udid for launch in result.launches] == ["", ""]  # the cloud picks the phone
    # an unplaced selector launch still starting keeps one matching phone aside
    o = obs({"q": (5, 0)}, ps, in_flight=[InFlight("p", "", True, NOW)])
    assert len(plan([p], o, LIMITS, NOW).launches) == 1


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_group_pool_launches_exactly_its_eligible_members_less_those_kept_aside(data):
    """A group pool (the cloud picks among its members): every launch names no phone; it makes as many as its
    pending tasks want and its eligible members allow (idle, not quarantined, not held, not booked), less one
    member kept aside for each launch not yet placed; none without an eligible member."""
    members = data.draw(st.lists(st.sampled_from(UDIDS), min_size=1, max_size=10, unique=True))
    states = st.sampled_from([PhoneState.IDLE] * 3 + [PhoneState.BUSY, PhoneState.UNAVAILABLE])
    phone_list = [Phone(u, "m", "1", data.draw(states)) for u in UDIDS]
    quarantined = data.draw(st.frozensets(st.sampled_from(members), max_size=3))
    held = {u: NOW + 50 for u in data.draw(st.lists(st.sampled_from(members), unique=True, max_size=3))}
    placed = [InFlight("g", u, data.draw(st.booleans()), NOW - 10)
              for u in data.draw(st.lists(st.sampled_from(members), unique=True, max_size=4))]
    unplaced = [InFlight("g", "", True, NOW - 10) for _ in range(data.draw(st.integers(0, 4)))]
    pending = data.draw(st.integers(0, 15))
    g = pool("g", udids=members, targeting="group")
    o = obs({"q": (pending, 0)}, phone_list, {"q": quarantined}, in_flight=placed + unplaced, held=held)
    result = plan([g], o, LIMITS, NOW, data.draw(st.integers(0, 1000)))
    state = {p.udid: p.state for p in phone_list}
    booked = {f.udid for f in placed}
    eligible = [u for u in members if state[u] is PhoneState.IDLE and u not in quarantined | set(held) | booked]
    starting = len(unplaced) + sum(f.starting for f in placed)
    assert all(launch.udid == "" for launch in result.launches)
    assert len(result.launches) == min(max(0, len(eligible) - len(unplaced)), max(0, pending - starting))


def test_least_recently_used_first_and_not_api_order():
    ids = [f"u{i}" for i in range(10)]
    p = pool(udids=ids)
    last_used = {u: float(i) for i, u in enumerate(reversed(ids))}  # u9 used longest ago
    result = plan([p], obs({"q": (3, 0)}, phones(*ids), last_used=last_used), LIMITS, NOW)
    assert [launch.udid for launch in result.launches] == ["u9", "u8", "u7"]
    # never used: a seeded shuffle, not the order the provider listed them in
    picks = {tuple(launch.udid for launch in plan([p], obs({"q": (3, 0)}, phones(*ids)), LIMITS, NOW, seed=s).launches) for s in range(5)}
    assert len(picks) > 1
    assert plan([p], obs({"q": (3, 0)}, phones(*ids)), LIMITS, NOW, seed=1) == plan(
        [p], obs({"q": (3, 0)}, phones(*ids)), LIMITS, NOW, seed=1
    )


# -- properties ----------------------------------------------------------------------------------------

UDIDS = [f"P{i:02d}" for i in range(16)]


@st.composite
def worlds(draw):
    n_pools = draw(st.integers(1, 4))
    pools = []
    for i in range(n_pools):
        members = draw(st.lists(st.sampled_from(UDIDS), min_size=1, max_size=10, unique=True))
        pools.append(
            pool(f"pool{i}", f"q{i}", udids=members, priority=draw(st.integers(0, 2)),
                 max_starting=draw(st.none() | st.integers(0, 5)), enabled=draw(st.booleans()) or i == 0)
        )
    states = st.sampled_from([PhoneState.IDLE] * 4 + [PhoneState.BUSY, PhoneState.UNAVAILABLE])
    phone_list = [
        Phone(u, "m", "1", draw(states)) for u in draw(st.lists(st.sampled_from(UDIDS), unique=True, max_size=16))
    ]

    def sometimes_unknown(known):
        return st.one_of(st.none(), known, known, known)  # unknown one time in four

    counts = {f"q{i}": draw(sometimes_unknown(st.builds(QueueCounts, st.integers(0, 12), st.integers(0, 5))))
              for i in range(n_pools)}
    quarantined = {f"q{i}": draw(sometimes_unknown(st.frozensets(st.sampled_from(UDIDS), max_size=3)))
                   for i in range(n_pools)}
    in_flight = [
        InFlight(f"pool{draw(st.integers(0, n_pools - 1))}", u, draw(st.booleans()), NOW - draw(st.integers(0, 2000)),
                 draw(st.booleans()), draw(st.none() | st.integers(0, 3000)))  # a warm launch's own limit
        for u in draw(st.lists(st.sampled_from(UDIDS), unique=True, max_size=6))
    ]
    held = {u: NOW + draw(st.integers(-100, 100)) for u in draw(st.lists(st.sampled_from(UDIDS), unique=True, max_size=3))}
    warm = {f"pool{i}": draw(st.integers(0, 6)) for i in range(n_pools) if draw(st.booleans())}
    expected = {name: draw(st.integers(0, 6)) for name in warm if draw(st.booleans())}
    o = Observation(counts, quarantined, {"prov": phone_list}, in_flight, held, warm=warm, warm_expected=expected)
    limits = Limits(draw(st.integers(0, 20)), draw(st.integers(0, 20)), 900)
    return pools, o, limits, draw(st.integers(0, 1000))


@settings(max_examples=1000, deadline=None)
@given(worlds())
def test_invariants(world):
    pools, o, limits, seed = world
    result = plan(pools, o, limits, NOW, seed)
    by_name = {p.name: p for p in pools}
    state = {p.udid: p.state for p in o.phones["prov"]}
    booked = {f.udid for f in o.in_flight}  # every launch in flight books its phone, however old
    starting = Counter(
        f.pool for f in o.in_flight if f.starting and (
            f.unsubmitted or NOW - f.since < (limits.max_startup_seconds if f.max_startup is None else f.max_startup))
    )
    made = Counter(launch.pool for launch in result.launches)

    udids = [launch.udid for launch in result.launches]
    assert len(udids) == len(set(udids)), "a phone booked twice"
    for launch in result.launches:
        p = by_name[launch.pool]
        assert p.enabled
        assert launch.udid in p.udids and state.get(launch.udid) is PhoneState.IDLE
        assert launch.udid not in booked
        assert launch.udid not in (o.quarantined[p.queue] or ())
        assert o.held.get(launch.udid, -1) <= NOW
    for name, n in made.items():
        p = by_name[name]
        counts = o.counts[p.queue]
        assert counts is not None and o.quarantined[p.queue] is not None
        assert n <= counts.pending + o.warm.get(name, 0) - starting[name], "more than pending + warm"
        demand = sum(1 for launch in result.launches if launch.pool == name and launch.kind == "demand")
        assert demand <= max(0, counts.pending - starting[name]), "more demand launches than pending"
        if p.max_starting is not None:
            assert n + starting[name] <= p.max_starting
    assert len(result.launches) <= limits.max_launches_per_cycle
    assert len(result.launches) + sum(starting.values()) <= max(limits.max_starting, sum(starting.values()))
    # priority: a lower-priority pool never took a phone a higher-priority pool wanted and could use
    for launch in result.launches:
        taker = by_name[launch.pool]
        for p in pools:
            if p.priority > taker.priority and launch.udid in p.udids and launch.udid not in (o.quarantined[p.queue] or ()):
                counts = o.counts[p.queue]
                wanted = 0 if counts is None or not p.enabled else counts.pending - starting[p.name]
                if p.max_starting is not None:
                    wanted = min(wanted, p.max_starting - starting[p.name])
                assert made[p.name] >= wanted or o.quarantined[p.queue] is None, "priority order broken"
    # warm launches come after every pool's demand: none took a phone some pool's pending task could use
    for launch in result.launches:
        if launch.kind != "warm":
            continue
        for p in pools:
            counts = o.counts[p.queue]
            if not p.enabled or counts is None or o.quarantined[p.queue] is None or launch.udid not in p.udids:
                continue
            if launch.udid in (o.quarantined[p.queue] or ()):
                continue
            wanted = counts.pending - starting[p.name]
            if p.max_starting is not None:
                wanted = min(wanted, p.max_starting - starting[p.name])
            demand = sum(1 for la in result.launches if la.pool == p.name and la.kind == "demand")
            assert demand >= wanted, "a warm launch took a phone a pending task could use"
    # the demand launches come first in the plan
    kinds = [launch.kind for launch in result.launches]
    assert kinds == sorted(kinds), "a warm launch planned before a demand launch"


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(0, 1000))
def test_equal_priority_pools_never_starve(pending_a, pending_b, seed):
    shared = [f"s{i}" for i in range(10)]
    a, b = pool("a", "qa", udids=shared), pool("b", "qb", udids=shared)
    result = plan([a, b], obs({"qa": (pending_a, 0), "qb": (pending_b, 0)}, phones(*shared)), LIMITS, NOW, seed)
    made = Counter(launch.pool for launch in result.launches)
    assert made["a"] >= min(pending_a, 5) and made["b"] >= min(pending_b, 5)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 12), st.integers(0, 8), st.integers(0, 8), st.integers(0, 1000))
def test_never_more_than_pending_minus_starting(pending, starting, idle, seed):
    ids = [f"I{i}" for i in range(idle)]
    flying = [InFlight("p", f"S{i}", True, NOW - i, unsubmitted=i % 2 == 0) for i in range(starting)]
    p = pool(udids=ids + [f.udid for f in flying])
    result = plan([p], obs({"q": (pending, 0)}, phones(*ids), in_flight=flying), LIMITS, NOW, seed)
    assert len(result.launches) == min(idle, max(0, pending - starting))


def test_warm_workers_beyond_pending():
    ids = [f"u{i}" for i in range(10)]
    p = pool(udids=ids)
    o = obs({"q": (2, 0)}, phones(*ids), in_flight=[InFlight("p", "u0", True, NOW - 10)], warm={"p": 3})
    result = plan([p], o, LIMITS, NOW)
    assert [launch.kind for launch in result.launches] == ["demand", "warm", "warm", "warm"]  # 2 + 3 - 1
    d = result.decisions[0]
    assert (d.warm_target, d.warm_launches, d.warm) == (3, 3, 0)
    # no task pending: the warm workers alone; enough in flight: nothing
    assert len(plan([p], obs({"q": (0, 0)}, phones(*ids), warm={"p": 2}), LIMITS, NOW).launches) == 2
    flying = [InFlight("p", u, True, NOW - 10) for u in ("u0", "u1")]
    result = plan([p], obs({"q": (0, 0)}, phones(*ids), in_flight=flying, warm={"p": 2}), LIMITS, NOW)
    assert result.launches == () and result.decisions[0].warm == 2


def test_warm_never_takes_a_phone_a_lower_priority_pools_task_could_use():
    shared = ["s0", "s1", "s2"]
    hi, lo = pool("hi", "qh", udids=shared, priority=10), pool("lo", "ql", udids=shared)
    result = plan([hi, lo], obs({"qh": (0, 0), "ql": (2, 0)}, phones(*shared), warm={"hi": 5}), LIMITS, NOW)
    assert sorted((launch.pool, launch.kind) for launch in result.launches) == [
        ("hi", "warm"), ("lo", "demand"), ("lo", "demand")]


def test_every_pools_expected_demand_goes_before_any_pools_margin():
    """An ``auto`` pool's expected demand (tasks due within one launch-to-claim time) is planned after every
    pool's pending tasks but before any pool's margin, whatever the priorities."""
    shared = ["s0", "s1", "s2", "s3"]
    hi, lo = pool("hi", "qh", udids=shared, priority=10), pool("lo", "ql", udids=shared)
    counts = {"qh": (0, 0), "ql": (1, 0)}
    result = plan([hi, lo], obs(counts, phones(*shared), warm={"hi": 5, "lo": 3}, warm_expected={"hi": 1, "lo": 2}),
                  LIMITS, NOW)
    # lo's pending task first, then hi's 1 and lo's 2 expected: no phone left for hi's margin
    assert [(launch.pool, launch.kind) for launch in result.launches][:1] == [("lo", "demand")]
    assert Counter(launch.pool for launch in result.launches) == {"hi": 1, "lo": 3}
    # an expected demand above the target counts as the target (less what is starting): it goes before hi's margin
    flying = [InFlight("lo", "s3", True, NOW - 10)]
    result = plan([hi, lo], obs({"qh": (0, 0), "ql": (0, 0)}, phones(*shared), in_flight=flying, warm={"hi": 5, "lo": 9},
                                warm_expected={"hi": 0, "lo": 20}), LIMITS, NOW)
    assert Counter(launch.pool for launch in result.launches) == {"lo": 3}
    # without an expected demand: the margins alone, by priority (as before)
    result = plan([hi, lo], obs(counts, phones(*shared), warm={"hi": 5, "lo": 3}), LIMITS, NOW)
    assert Counter(launch.pool for launch in result.launches) == {"lo": 1, "hi": 3}


def test_warm_respects_caps_and_unknown_counts():
    ids = [f"u{i}" for i in range(10)]
    assert len(plan([pool(udids=ids, max_starting=2)], obs({"q": (1, 0)}, phones(*ids), warm={"p": 5}), LIMITS, NOW).launches) == 2
    assert plan([pool(udids=ids)], obs({"q": None}, phones(*ids), warm={"p": 5}), LIMITS, NOW).launches == ()
    assert len(plan([pool(udids=ids)], obs({"q": (1, 0)}, phones(*ids), warm={"p": 5}), Limits(3, 100, 900), NOW).launches) == 3


def test_a_warm_launch_covers_until_its_own_limit():
    ids = ["a", "b"]
    flying = [InFlight("p", "a", True, NOW - 1000, max_startup=1200)]  # past max_startup_seconds, not its own
    result = plan([pool(udids=ids)], obs({"q": (0, 0)}, phones(*ids), in_flight=flying, warm={"p": 1}), LIMITS, NOW)
    assert result.launches == ()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from("12"), st.sampled_from(list(PhoneState)),
                          st.booleans(), st.booleans()), max_size=30))
def test_the_index_counts_each_group_as_category_says(rows):
    from provisioner.planner import _Index

    phones = [Phone(f"U{i}", model, os_version, state) for i, (model, os_version, state, _, _) in enumerate(rows)]
    booked = {p.udid for p, row in zip(phones, rows) if row[3]}
    held = {p.udid for p, row in zip(phones, rows) if row[4]}
    index = _Index(phones, booked, held)
    for (model, os_version), group in index.by_kind.items():
        mine = [p for p in phones if (p.model, p.os_version) == (model, os_version)]
        tally = Counter(index.category(p) for p in mine)
        assert group.counts == tuple(tally[c] for c in range(4))
        assert list(group) == [p.udid for p in mine if index.category(p) == 0]  # free, in the provider's order
