"""Two daemons on one PostgreSQL ledger: kill the active one at random moments, 10 times, and restart it as a new
standby each time. At most one is active at any time, the standby takes over within two of its cycles, no phone
is booked twice and every job the fleet created is recorded exactly once.

The fleet is test_crash_rounds' plugin whose phones and jobs live in an SQLite file both daemons reach (as a
cloud's jobs outlive a daemon). The test never sleeps to wait: it blocks on the daemons' log lines (each stamped
with when it arrived); the kill moments come from a seeded RNG.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import psycopg
from test_crash_rounds import Daemon, disk_world

ROUNDS = 10
INTERVAL = 1.0


class Stamped(Daemon):
    """A daemon whose output lines carry the monotonic time they arrived at."""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(f"{time.monotonic():.6f} {line}")
        self.lines.put(None)

    def first(self, needle: str) -> float | None:
        return next((float(line.split(" ", 1)[0]) for line in self.seen if needle in line), None)


def when(line: str) -> float:
    return float(line.split(" ", 1)[0])


def test_ten_kills_of_the_active_daemon_fail_over_in_two_cycles_and_book_nothing_twice(tmp_path: Path, pg_server,
                                                                                   monkeypatch):
    url = pg_server.database()
    monkeypatch.setenv("PROVISIONER_TEST_LEDGER", url)
    config, site, db = disk_world(tmp_path, INTERVAL, postgresql=True)
    rng = random.Random(20261130)
    active = Stamped(config, site)
    assert active.wait_for("role: active"), "".join(active.seen)
    standby = Stamped(config, site)
    assert standby.wait_for("role: standby"), "".join(standby.seen)
    takeovers: list[tuple[int, float]] = []  # (standby cycles after the kill, seconds from kill to active)
    for _ in range(ROUNDS):
        active.wait_for("CREATED", rng.randint(0, 3), timeout=10)  # a random moment: after 0 to 3 new jobs...
        if rng.random() < 0.5:
            active.wait_for("launched job", 1, timeout=rng.uniform(0, 0.2))  # ...and a little later, sometimes
        killed = time.monotonic()
        active.kill()
        assert standby.first("role: active") is None, "".join(standby.seen)  # never two active at once
        assert standby.wait_for("role: active", timeout=30), "".join(standby.seen)
        took = standby.first("role: active")
        assert took is not None and took > killed
        cycles = sum(1 for line in standby.seen if "standby cycle" in line and killed < when(line) <= took)
        takeovers.append((cycles + 1, took - killed))  # +1: the cycle that took over
        assert standby.wait_for(" pools, pending"), "".join(standby.seen)  # its first cycle: orphans adopted
        db.execute("UPDATE jobs SET ended = ? WHERE ended IS NULL AND created < ?",  # then the dead one's jobs end
                   (time.time(), time.time() - 2 * INTERVAL))
        active, standby = standby, Stamped(config, site)
        assert standby.wait_for("role: standby"), "".join(standby.seen)
    assert active.wait_for(" pools, pending", 8), "".join(active.seen)  # past max_startup_seconds: orphans resolved
    for daemon in (standby, active):
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(60) == 0

    report = os.environ.get("PROVISIONER_FAILOVER_REPORT")
    if report:
        Path(report).write_text(repr(takeovers))
    assert all(cycles <= 2 for cycles, _ in takeovers), takeovers  # within two cycles of the kill
    whole(url, db, ROUNDS)


def whole(url: str, db, rounds: int) -> None:
    """After ``rounds`` takeovers: every job the fleet created is in the ledger exactly once, no phone got a second
    live job, no launch is left queued or submitting, and each takeover was by another daemon, in order."""
    with psycopg.connect(url) as ledger:
        created = [row[0] for row in db.execute("SELECT id FROM jobs")]
        recorded = [row[0] for row in ledger.execute("SELECT job_id FROM launches WHERE job_id != ''")]
        assert len(created) >= rounds  # the rounds did launch
        assert sorted(recorded) == sorted(created)  # every job the fleet created is in the ledger, exactly once
        assert list(db.execute("SELECT udid FROM doubles")) == []  # no phone got a second live job
        left = ledger.execute("SELECT COUNT(*) FROM launches WHERE state IN ('queued', 'submitting')").fetchone()[0]
        assert left == 0
        epochs = ledger.execute("SELECT epoch, holder FROM leadership_history ORDER BY epoch").fetchall()
        assert [e for e, _ in epochs] == list(range(1, rounds + 2)), epochs  # one takeover per round, in order
        assert all(a != b for (_, a), (_, b) in zip(epochs, epochs[1:]))  # each by another daemon
