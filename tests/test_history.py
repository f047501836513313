"""Retention and the ledger's reads: old launches folded into daily counts; every query a cycle runs uses an index."""

from __future__ import annotations

import sqlite3

from worlds import fake_loop as make

from provisioner.cli.report import read_history, report_data
from provisioner.history import BATCH, DAY, endings, prune
from provisioner.ledger import Ledger
from provisioner.model import LaunchState

NOW = 1_750_000_000.0


def fill(ledger: Ledger, n: int, start: float, step: float) -> None:
    with ledger.batch():
        for i in range(n):
            launch = ledger.add("p", f"U{i % 7}", start + i * step)
            if i % 5 == 0:
                ledger.update(launch.id, LaunchState.FAILED, start + i * step + 1, detail="CLI exited 1")
                continue
            if i % 3:
                ledger.update(launch.id, LaunchState.RUNNING, start + i * step + 200, job_id=f"J{i}")
            outcome = "completed" if i % 4 else "failed"
            ledger.update(launch.id, LaunchState.ENDED, start + i * step + 900, job_id=f"J{i}", outcome=outcome)


def test_old_launches_are_folded_into_daily_counts_and_the_report_adds_up(backend):
    ledger = backend.open()
    fill(ledger, 3 * BATCH, NOW - 60 * DAY, 60 * DAY / (3 * BATCH))  # two months, a launch every half hour
    ledger.hold("U1", NOW - 50 * DAY, NOW - 49 * DAY, "manual", "cable")
    ledger.hold("U2", NOW - 1 * DAY, NOW + DAY, "manual", "screen")
    before = sorted((e.pool, e.udid, e.state, e.outcome, e.ran, e.n) for e in endings(ledger, NOW - 90 * DAY))
    gone = prune(ledger, NOW, 35, batches=1)
    assert gone == BATCH  # one small batch per call
    while prune(ledger, NOW, 35) == 10 * BATCH:
        pass
    kept = ledger.query("SELECT MIN(submitted_at) FROM launches")[0][0]
    assert kept >= NOW - 35 * DAY
    after = sorted((e.pool, e.udid, e.state, e.outcome, e.ran, e.n) for e in endings(ledger, NOW - 90 * DAY))
    assert _totals(after) == _totals(before)  # nothing lost: the counts only moved
    assert [h.reason for h in ledger.hold_history(NOW - 90 * DAY)] == ["screen"]  # the hold over long ago went
    data = report_data(["p"], read_history(ledger, [], NOW - 90 * DAY), [], {}, ("failed",), NOW - 90 * DAY, NOW, [])
    assert data["pools"][0]["launches"] == 3 * BATCH


def _totals(rows):
    out = {}
    for pool, udid, state, outcome, ran, n in rows:
        key = (pool, udid, state, outcome, ran)
        out[key] = out.get(key, 0) + n
    return out


def test_the_loop_folds_old_launches_once_an_hour(tmp_path, backend):
    p, fake, clock = make(tmp_path, backend=backend)
    fill(p.ledger, 50, clock.now() - 40 * 86400.0, 60.0)
    p.cycle()
    assert p.ledger.query("SELECT COUNT(*) FROM launches")[0][0] == 0
    assert p.ledger.query("SELECT SUM(n) FROM launch_days")[0][0] == 50 - 0  # cancelled ones aside, all kept


def test_every_query_a_cycle_runs_uses_an_index(tmp_path):
    p, fake, clock = make(tmp_path)
    fake.pending["proj/p"] = 2
    fill(p.ledger, 200, clock.now() - 3 * 86400.0, 600.0)
    statements: list[str] = []
    p.ledger._db.set_trace_callback(statements.append)
    for _ in range(3):
        p.cycle()
        clock.advance(30)
    p.ledger._db.set_trace_callback(None)
    reads = {s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))}
    assert reads, "the cycle read nothing?"
    db = sqlite3.connect(p.ledger.path)
    for sql in reads:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql)]
        # a whole table, by no index or along a whole index: only the small holds table may be read so
        scans = [step for step in plan if step.startswith("SCAN ") and not step.startswith(("SCAN (", "SCAN recent", "SCAN last"))
                 and "holds" not in step and not step.startswith("SCAN h ")]
        assert not scans, (sql, plan)


def test_reading_a_ledger_not_migrated_yet_says_what_to_do(tmp_path):
    import pytest

    from provisioner.ledger.core import OldSchema

    db = sqlite3.connect(tmp_path / "l.sqlite3")
    db.execute("""CREATE TABLE launches (id TEXT PRIMARY KEY, pool TEXT NOT NULL, udid TEXT NOT NULL,
        state TEXT NOT NULL, submitted_at REAL NOT NULL, updated_at REAL NOT NULL, job_id TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '')""")
    db.commit()
    db.close()
    with pytest.raises(OldSchema, match="restart the daemon, or run `provisioner ledger migrate`"):
        Ledger(tmp_path / "l.sqlite3", readonly=True)
    Ledger(tmp_path / "l.sqlite3").close()  # the daemon's open migrates it
    Ledger(tmp_path / "l.sqlite3", readonly=True).close()
