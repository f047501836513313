"""The ledger's two backends: versioned migrations (an old SQLite ledger upgraded in place), leadership and fencing
on PostgreSQL, standbys that never launch, a PostgreSQL server that goes away and comes back, and the copy of an
SQLite ledger into PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest
from click.testing import CliRunner
from worlds import CONFIG, fake_world

from provisioner.cli import cli
from provisioner.config import load
from provisioner.ledger import LATEST, Fenced, Ledger, PostgreSQL
from provisioner.ledger.leadership import Lease
from provisioner.loop import Provisioner
from provisioner.model import LaunchState

OLD_SCHEMA = """
CREATE TABLE launches (id TEXT PRIMARY KEY, pool TEXT NOT NULL, udid TEXT NOT NULL, state TEXT NOT NULL,
    submitted_at REAL NOT NULL, updated_at REAL NOT NULL, job_id TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '', ran_at REAL, claimed_at REAL);
CREATE INDEX launches_state ON launches(state);
CREATE TABLE holds (id INTEGER PRIMARY KEY AUTOINCREMENT, udid TEXT NOT NULL, since REAL NOT NULL,
    until REAL NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', released_at REAL);
INSERT INTO launches VALUES ('a','p','A','starting',1,2,'j1','','',NULL,NULL);
INSERT INTO launches VALUES ('b','p','B','ended',3,4,'j2','completed','',3.5,3.7);
INSERT INTO holds (udid, since, until, source) VALUES ('A', 1, 9e9, 'manual');
"""


def versions(ledger: Ledger) -> list[int]:
    return [r[0] for r in ledger.query("SELECT version FROM schema_version ORDER BY version")]


def test_an_old_sqlite_ledger_without_versions_is_upgraded_in_place(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)  # two of the columns added since, no version table, no leadership
    db.close()
    ledger = Ledger(path)
    assert versions(ledger) == list(range(1, LATEST + 1))
    assert [la.id for la in ledger.in_flight()] == ["a"]
    assert ledger.get("b").claimed_at == 3.7 and ledger.get("b").claim_baseline is None
    ledger.mark("a", submit_seconds=1.5, claim_baseline="t/0")  # the columns it lacked are there
    assert ledger.submit_seconds(0) == [1.5] and ledger.holds(10)[0].udid == "A"
    assert ledger.leader("provisioner") is None
    ledger.close()
    again = Ledger(path)  # nothing left to do
    assert versions(again) == list(range(1, LATEST + 1))


def test_migrations_run_once_even_when_daemons_start_together(backend):
    opened, errors = [], []

    def start():
        try:
            opened.append(backend.open())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(opened) == 4
    assert versions(opened[0]) == list(range(1, LATEST + 1))


@pytest.fixture
def pg_url(pg_server) -> str:
    return pg_server.database()


def test_one_lease_leads_and_the_old_leader_is_fenced(pg_url):
    first, second = Ledger(PostgreSQL(pg_url), follow=True), Ledger(PostgreSQL(pg_url), follow=True)
    a, b = Lease(PostgreSQL(pg_url), "t", 30, "hostA:1"), Lease(PostgreSQL(pg_url), "t", 30, "hostB:2")
    role = a.check(100.0)
    assert role.active and role.epoch == 1
    first.take_over("t", role.epoch)
    queued = first.add("p", "A", 100.0)
    standby = b.check(101.0)
    assert not standby.active and standby.holder == "hostA:1"
    assert standby.describe().startswith("standby (active: hostA pid 1 since")
    a.release()  # A's session ends (killed, cut off): the lock goes, A's ledger still thinks it leads
    role = b.check(102.0)
    assert role.active and role.epoch == 2
    second.take_over("t", role.epoch)
    assert second.recover(102.0) == 1  # A's queued launch: never submitted, cancelled
    with pytest.raises(Fenced):
        first.update(queued.id, LaunchState.SUBMITTING, 103.0)
    with pytest.raises(Fenced):
        first.add("p", "B", 103.0)
    assert [la.udid for la in second.since(0)] == ["A"] and second.get(queued.id).state is LaunchState.CANCELLED
    history = second.query("SELECT epoch, holder FROM leadership_history WHERE tag = 't' ORDER BY epoch")
    assert history == [(1, "hostA:1"), (2, "hostB:2")]
    assert not a.check(104.0).active  # A comes back: a standby now
    b.close()
    a.close()


def provisioner(tmp_path, url: str, name: str):
    config, fake, clock, runtime = fake_world(tmp_path, CONFIG)
    lease = Lease(PostgreSQL(url), config.settings.job_tag, config.settings.interval, f"{name}:1")
    ledger = Ledger(PostgreSQL(url), follow=True)
    return Provisioner(config, runtime, ledger, clock, inline=True, lease=lease), fake, clock


def test_a_standby_observes_but_never_plans_or_launches(tmp_path, pg_url, log_lines):
    active, fake_a, _ = provisioner(tmp_path, pg_url, "hostA")
    standby, fake_b, _ = provisioner(tmp_path, pg_url, "hostB")
    fake_a.pending["proj/p"] = fake_b.pending["proj/p"] = 2
    first = active.cycle()
    assert first.active and len(first.plan.launches) == 2 and len(fake_a.launched) == 2
    for _ in range(3):
        report = standby.cycle()
        assert not report.active and report.plan.launches == () and fake_b.launched == []
        assert report.role.startswith("standby (active: hostA pid 1 since")
    roles = [line for line in log_lines if "role: " in line]
    assert len(roles) == 2  # one line each when the role changed, not one a cycle
    assert "role: active (epoch 1)" in roles[0] and "role: standby (active: hostA" in roles[1]
    active.lease.close()  # the active one goes away: the standby takes over at its next cycle, knowing the launches
    report = standby.cycle()
    assert report.active and len(standby.ledger.in_flight()) == 2 and fake_b.launched == []


def test_the_ledger_server_down_for_a_while_stops_launches_and_they_resume_within_a_cycle(tmp_path, log_lines):
    from pgserver import Server

    server = Server()  # its own server: this test stops it
    try:
        p, fake, clock = provisioner(tmp_path, server.database(), "hostA")
        fake.pending["proj/p"] = 1
        assert len(p.cycle().plan.launches) == 1
        server.stop()
        fake.pending["proj/p"] = 3
        for _ in range(3):
            clock.advance(30)
            report = p.cycle()  # no ledger: no launch, a standby saying why
            assert not report.active and "ledger unreachable" in report.role and len(fake.launched) == 1
        server.start()
        clock.advance(30)
        report = p.cycle()
        assert report.active and len(report.plan.launches) == 2 and len(fake.launched) == 3
        assert sorted(la.state.value for la in p.ledger.in_flight()) == ["starting"] * 3
        p.lease.close()
        p.ledger.close()
    finally:
        server.close()
    assert sum("role: " in line for line in log_lines) == 3  # active, standby (unreachable), active again


def test_an_sqlite_ledger_is_copied_into_postgresql_with_its_ids(tmp_path, pg_url, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.replace("[provisioner]", '[provisioner]\nstate_dir = "state"\nledger_url_env = "LEDGER_URL"'))
    old = Ledger(tmp_path / "state" / "ledger.sqlite3")
    launch = old.add("p", "A", 1.0)
    old.update(launch.id, LaunchState.ENDED, 2.0, job_id="j", outcome="completed")
    old.hold("B", 1.0, 9e9, "manual", "cable")
    old.query("SELECT 1")
    with old.transaction() as db:
        db.execute("INSERT INTO launch_days VALUES ('2026-01-01', 'p', 'A', 'ended', 'completed', 1, 7)")
    old.close()
    monkeypatch.setenv("LEDGER_URL", pg_url)
    runner = CliRunner()
    result = runner.invoke(cli, ["ledger", "copy", "-c", str(config), "--to", "postgresql"])
    assert result.exit_code == 0, result.output
    assert "1 launches, 1 holds, 1 launch_days" in result.output
    copied = Ledger(PostgreSQL(pg_url))
    assert copied.get(launch.id).job_id == "j" and copied.holds(10)[0].reason == "cable"
    copied.hold("C", 1.0, 9e9, "manual")  # ids go on after the copied ones
    assert copied.query("SELECT id FROM holds ORDER BY id") == [(1,), (2,)]
    again = runner.invoke(cli, ["ledger", "copy", "-c", str(config), "--to", "postgresql"])
    assert again.exit_code == 2 and "not empty" in again.output
    forced = runner.invoke(cli, ["ledger", "copy", "-c", str(config), "--to", "postgresql", "--force"])
    assert forced.exit_code == 0, forced.output
    assert copied.query("SELECT COUNT(*) FROM holds") == [(1,)]
    copied.close()


def test_status_phones_and_report_work_from_any_host_against_postgresql(tmp_path, pg_url, monkeypatch):
    from test_ops_status import write

    config = write(tmp_path, perf=1)
    config.write_text(config.read_text().replace("[provisioner]", '[provisioner]\nledger = "postgresql"\n'
                                                 'ledger_url_env = "LEDGER_URL"'))
    monkeypatch.setenv("LEDGER_URL", pg_url.replace("postgres@", "postgres:s3cret-pw@"))
    lease = Lease(PostgreSQL(pg_url), "provisioner", 30, "elsewhere:42")
    Ledger(PostgreSQL(pg_url)).close()
    assert lease.check(1_700_000_000.0).active
    runner = CliRunner()
    status = runner.invoke(cli, ["status", "-c", str(config)])
    assert status.exit_code == 0, status.output
    assert "role: standby (active: host elsewhere since" in status.output
    assert json.loads(runner.invoke(cli, ["status", "-c", str(config), "--json"]).output)["role"]["holder"] == "elsewhere:42"
    held = runner.invoke(cli, ["phones", "hold", "-c", str(config), "X1", "--for", "1h", "--force"])
    assert held.exit_code == 0, held.output
    assert "X1" in runner.invoke(cli, ["phones", "held", "-c", str(config)]).output
    assert runner.invoke(cli, ["phones", "release", "-c", str(config), "X1"]).exit_code == 0
    report = runner.invoke(cli, ["report", "-c", str(config), "--since", "1d"])
    assert report.exit_code == 0, report.output
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()
    monkeypatch.setenv("LEDGER_URL", pg_url.replace("postgres@", "postgres:s3cret-pw@").replace(str(pg_url.split(":")[-1].split("/")[0]), "1"))
    down = runner.invoke(cli, ["status", "-c", str(config)])
    assert down.exit_code == 2 and "cannot open the ledger" in down.output and "s3cret-pw" not in down.output
    lease.close()


def test_a_postgresql_ledger_needs_its_variable_named_not_the_url_in_the_file(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    base = CONFIG.replace("[provisioner]", '[provisioner]\nledger = "postgresql"\n')
    config.write_text(base)
    _, problems = load(config)
    assert [p.key for p in problems] == ["provisioner.ledger_url_env"]
    config.write_text(base.replace('ledger = "postgresql"\n', 'ledger = "postgresql"\nledger_url_env = '
                                   '"postgresql://u:pw@db/x"\n'))
    _, problems = load(config)
    assert problems and "pw" not in str(problems[0]) and "variable name" in str(problems[0])


def test_ledger_migrate_brings_the_schema_up_to_date(tmp_path, pg_url, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.replace("[provisioner]", '[provisioner]\nledger = "postgresql"\nledger_url_env = "LEDGER_URL"'))
    monkeypatch.setenv("LEDGER_URL", pg_url)
    result = CliRunner().invoke(cli, ["ledger", "migrate", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert f"schema version {LATEST}" in result.output and "postgresql://127.0.0.1:" in result.output


def test_the_role_reaches_metrics_and_systemd(tmp_path, pg_url, monkeypatch):
    import threading as th

    from provisioner import notify
    from provisioner.metrics.observer import MetricsObserver

    said = []
    monkeypatch.setattr(notify, "watchdog", lambda status="": said.append(status))
    active, _, _ = provisioner(tmp_path, pg_url, "hostA")
    standby, _, _ = provisioner(tmp_path, pg_url, "hostB")
    active.cycle()
    observer = MetricsObserver("127.0.0.1", 0)
    observer.start = lambda: None  # no endpoint: the registry is read directly
    observer.provisioner_cycle(report=standby.cycle())
    assert observer.registry.get_sample_value("provisioner_leader") == 0
    observer.provisioner_cycle(report=active.cycle())
    assert observer.registry.get_sample_value("provisioner_leader") == 1
    standby.run(th.Event(), max_cycles=1)
    assert said and said[-1].startswith("cycle 2, standby (active: hostA pid 1")


def test_without_server_programs_the_postgresql_tests_skip_unless_ci_requires_them(monkeypatch):
    import pgserver

    monkeypatch.setattr(pgserver, "find", lambda program: None)
    monkeypatch.delenv(pgserver.REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception):
        pgserver.available()
    monkeypatch.setenv(pgserver.REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception):
        pgserver.available()


def test_ci_requires_the_postgresql_tests_where_the_server_programs_are_installed():
    from pathlib import Path

    script = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "PROVISIONER_REQUIRE_POSTGRES=1" in script and "command -v initdb" in script
    assert script.index("PROVISIONER_REQUIRE_POSTGRES=1") < script.index("make test")


def test_a_paused_leader_loses_its_lease_and_cannot_launch_when_it_wakes(tmp_path, pg_url):
    import time

    a, fake_a, clock_a = provisioner(tmp_path, pg_url, "hostA")
    b, fake_b, _ = provisioner(tmp_path, pg_url, "hostB")
    a.lease.idle_ms = b.lease.idle_ms = 1000  # the server drops a lease idle for a second
    fake_a.pending["proj/p"] = fake_b.pending["proj/p"] = 1
    assert a.cycle().active and len(fake_a.launched) == 1
    assert not b.cycle().active
    a.lease._stop.set()  # A pauses: nothing touches its lease any more
    deadline = time.monotonic() + 20
    while not (report := b.cycle()).active:  # B takes over once the server dropped A's idle session
        assert time.monotonic() < deadline, report.role
        a.lease._stop.wait(0.1)
    assert len(b.ledger.in_flight()) == 1 and fake_b.launched == []  # A's launch covers the task: none twice
    with pytest.raises(Fenced):  # A wakes mid-cycle, about to write a launch: refused
        a.ledger.add("p", "B", clock_a.now())
    fake_a.pending["proj/p"] = 3
    report = a.cycle()
    assert not report.active and len(fake_a.launched) == 1
    assert [e for (e,) in b.ledger.query("SELECT epoch FROM leadership_history ORDER BY epoch")] == [1, 2]


def test_check_names_the_unset_variable_of_the_connection_string(tmp_path, monkeypatch):
    from test_ops_status import write

    config = write(tmp_path, perf=1)
    config.write_text(config.read_text().replace("[provisioner]", '[provisioner]\nledger = "postgresql"\n'
                                                 'ledger_url_env = "LEDGER_URL"'))
    monkeypatch.delenv("LEDGER_URL", raising=False)
    result = CliRunner().invoke(cli, ["check", "-c", str(config)])
    assert result.exit_code == 2
    assert "provisioner.ledger_url_env: environment variable LEDGER_URL is not set" in result.output
