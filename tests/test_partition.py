"""Two daemons on one PostgreSQL ledger, each reaching the server through a TCP proxy of its own (tcpproxy.py). Ten
times, at seeded moments, the active daemon is cut off while it keeps running: its proxy is frozen (a black hole:
nothing delivered, nothing refused) for longer than the lease, then cut, then mended. Half the freezes come in
the middle of a fenced write, the leadership row held by the cut-off daemon's open transaction.

What holds: the cut-off daemon calls its launcher only while it can still prove its lease (before the send time
of its last answered lease statement plus the lease, so before the freeze plus the lease: see
``leadership.Lease``); the other takes over within two of its cycles of the lease's end; when the link returns,
the old leader stands by; every job the fleet created is in the ledger exactly once and no phone got two live
jobs. The fleet is test_crash_rounds' (phones and jobs in an SQLite file both daemons reach). The test never
sleeps to wait: it blocks on the daemons' log lines, each stamped with when it arrived.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

from tcpproxy import Proxy
from worlds import CONFIG, fake_world
from test_crash_rounds import disk_world
from test_failover import Stamped, when, whole

from provisioner.ledger import Ledger, PostgreSQL
from provisioner.ledger.leadership import Lease
from provisioner.loop import Provisioner
from provisioner.model import LaunchState

ROUNDS = 10
INTERVAL = 1.0
LEASE = 1.0  # the lease of a daemon whose interval is 1 s (leadership.Lease: one cycle, at least 1 s)


def after(daemon: Stamped, needle: str, since: float, timeout: float = 30.0) -> float | None:
    """When ``needle`` first came from ``daemon`` after ``since`` (waiting for it up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = next((when(line) for line in daemon.seen if needle in line and when(line) > since), None)
        if found is not None:
            return found
        if not daemon.wait_for(needle, timeout=max(0.0, deadline - time.monotonic())):
            return None


def test_ten_partitions_of_the_active_daemon_fail_over_in_two_cycles_and_book_nothing_twice(tmp_path: Path,
                                                                                          pg_server):
    started = time.monotonic()
    url = pg_server.database()
    config, site, db = disk_world(tmp_path, INTERVAL, postgresql=True)
    proxies = [Proxy(pg_server.port), Proxy(pg_server.port)]
    rng = random.Random(20261206)

    def daemon(i: int) -> Stamped:
        return Stamped(config, site, PROVISIONER_TEST_LEDGER=proxies[i].url(url, pg_server.port))

    daemons = [daemon(0)]
    assert daemons[0].wait_for("role: active"), "".join(daemons[0].seen)
    daemons.append(daemon(1))
    assert daemons[1].wait_for("role: standby"), "".join(daemons[1].seen)
    freezes: list[list[float]] = [[], []]  # per daemon, when each of its active periods was frozen
    takeovers: list[tuple[int, float]] = []  # (standby cycles after the lease's end, seconds from freeze to active)
    mid: list[bool] = []  # per round, whether the freeze came in the middle of a transaction
    a, b = 0, 1  # the active daemon, the standby
    try:
        for _ in range(ROUNDS):
            cut_off, other = daemons[a], daemons[b]
            cut_off.wait_for("CREATED", rng.randint(0, 3), timeout=3)  # a random moment: after 0 to 3 new jobs...
            if rng.random() < 0.5:
                cut_off.wait_for("launched job", 1, timeout=rng.uniform(0, 0.2))  # ...and a little later, sometimes
            mid.append(rng.random() >= 0.5)
            if not mid[-1]:  # at that moment
                proxies[a].freeze()
            else:  # or in the middle of its next fenced write (the leadership row held FOR SHARE): one job ends
                proxies[a].freeze(in_transaction=True)
                db.execute("UPDATE jobs SET ended = ? WHERE rowid = (SELECT MIN(rowid) FROM jobs WHERE ended IS NULL)",
                           (time.time(),))
            assert proxies[a].frozen.wait(10)
            froze = proxies[a].frozen_at
            freezes[a].append(froze)
            took = after(other, "role: active", froze)
            assert took is not None, "".join(other.seen)
            ended = froze + LEASE  # the cut-off daemon's lease ended by then (its last statement was sent before)
            cycles = sum(1 for line in other.seen if "standby cycle" in line and ended < when(line) <= took)
            takeovers.append((cycles + 1, took - froze))  # +1: the cycle that took over
            assert other.wait_for(" pools, pending", rng.randint(1, 2)), "".join(other.seen)  # frozen a while more
            proxies[a].cut()
            assert after(cut_off, "role: standby", froze) is not None, "".join(cut_off.seen)
            mended = time.monotonic()
            proxies[a].mend()
            assert after(cut_off, "role: standby (active:", mended) is not None, "".join(cut_off.seen)
            db.execute("UPDATE jobs SET ended = ? WHERE ended IS NULL AND created < ?",  # the old leader's jobs end
                       (time.time(), time.time() - 2 * INTERVAL))
            a, b = b, a
        assert daemons[a].wait_for(" pools, pending", 8), "".join(daemons[a].seen)  # orphans resolved
        for d in (daemons[b], daemons[a]):  # the standby first: it would take over from the one stopping
            d.proc.send_signal(signal.SIGTERM)
            assert d.proc.wait(60) == 0, "".join(d.seen)
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                d.kill()
        for p in proxies:
            p.close()
    took_seconds = time.monotonic() - started

    report = os.environ.get("PROVISIONER_PARTITION_REPORT")
    if report:
        Path(report).write_text(repr({"seconds": round(took_seconds, 1), "takeovers": takeovers}))
    for i, d in enumerate(daemons):  # the launcher is called only while active, and before a freeze's lease end
        active, period = False, -1
        for line in d.seen:
            if "role: active" in line:
                active, period = True, period + 1
            elif "role: standby" in line:
                active = False
            elif "CALLED" in line:
                called = float(line.split()[-1])
                assert active, f"daemon {i} launched as a standby: {line}"
                if period < len(freezes[i]):
                    assert called < freezes[i][period] + LEASE, (i, period, called - freezes[i][period])
    assert all(cycles <= 2 for cycles, _ in takeovers), takeovers  # within two cycles of the lease's end
    assert 3 <= sum(mid) <= ROUNDS - 3  # both kinds of freeze, a few times each
    whole(url, db, ROUNDS)  # every job once, no phone twice, one takeover per partition


def test_a_lease_on_a_frozen_link_is_given_up_within_its_statements_deadline_not_at_the_cut(pg_server):
    url = pg_server.database()
    Ledger(PostgreSQL(url)).close()  # the schema
    proxy = Proxy(pg_server.port)
    lease = Lease(PostgreSQL(proxy.url(url, pg_server.port)), "t", 1.0, "hostA:1")
    try:
        assert lease.check(100.0).active and lease.held()
        proxy.freeze()
        roles = []
        checking = threading.Thread(target=lambda: roles.append(lease.check(101.0)), daemon=True)
        checking.start()  # its statement waits on the frozen link (a new connection would too)
        checking.join(2 * LEASE + PostgreSQL.CONNECT_TIMEOUT + 2)  # the link is still frozen
        assert roles and not roles[0].active and "ledger unreachable" in roles[0].problem and not lease.held()
    finally:
        lease.close()
        proxy.close()


def test_a_launch_whose_submitting_write_returned_past_the_lease_is_not_handed_to_the_launcher(tmp_path, pg_server):
    url = pg_server.database()
    config, fake, clock, runtime = fake_world(tmp_path, CONFIG)
    monotonic = [0.0]
    lease = Lease(PostgreSQL(url), config.settings.job_tag, config.settings.interval, "hostA:1",
                  monotonic=lambda: monotonic[0])
    lease._stop.set()  # no touches: only the cycle's statements prove the lease
    ledger = Ledger(PostgreSQL(url), follow=True)
    p = Provisioner(config, runtime, ledger, clock, inline=True, lease=lease)
    update = ledger.update

    def slow(launch_id, state, now, **values):  # the write waited on a frozen link longer than the lease
        moved = update(launch_id, state, now, **values)
        if state is LaunchState.SUBMITTING:
            monotonic[0] += lease.idle_ms / 1000
        return moved

    fake.pending["proj/p"] = 2
    ledger.update = slow
    report = p.cycle()
    assert report.active and len(report.plan.launches) == 2 and fake.launched == []
    cancelled = ledger.query("SELECT state, detail FROM launches")
    assert cancelled == [("cancelled", "the lease was no longer proven")] * 2
    ledger.update = update  # the writes answer in time again: the next cycle proves the lease and launches
    assert p.cycle().active and len(fake.launched) == 2
    lease.close()
    ledger.close()
