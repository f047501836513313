"""Kill the daemon at random moments, 20 times, against a fleet that outlives it; nothing is lost or booked twice.

The fleet is a plugin whose phones and jobs live in an SQLite file of the test, so a job created by a daemon that
is then killed is still there when the next daemon starts (as a cloud's job is). Its device list lags: a phone
shows idle for two seconds after a job lands on it, so only the ledger keeps a restarted daemon off that phone.
The test never sleeps to wait: it blocks on the daemon's log lines; the random kill moments come from a seeded RNG.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from test_plugins import make_dist

from provisioner.ledger import Ledger

FLEET = '''
import random, sqlite3, sys, threading, time, uuid
from provisioner import (hookimpl, JobState, LaunchResult, Option, Phone, PhoneState, QueueCounts, RemoteJob,
                         RoleSpec)

LAG = 2.0  # seconds a phone still shows idle after a job landed on it
_SAY = threading.Lock()


def say(line):
    """One whole line on stdout: submissions run on several threads, and print() writes its parts one by one
    (two threads' parts interleaved into one line the test cannot read)."""
    with _SAY:
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()


PHONES = {"P0": "M", "P1": "M", "P2": "M", "P3": "M", "S0": "S", "S1": "S", "S2": "S"}


class DiskFleet:
    def __init__(self, options, context):
        self.path = options["path"]
        self.rng = random.Random()

    def db(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        return db

    def counts(self, queues):
        return {q: QueueCounts(100, 0) for q in queues}

    def workers(self, queues):
        return {q: [] for q in queues}

    def phones(self):
        db = self.db()
        live = dict(db.execute("SELECT udid, MIN(created) FROM jobs WHERE ended IS NULL AND udid != '' GROUP BY udid"))
        db.execute("COMMIT")
        now = time.time()
        return [Phone(u, model=m, state=PhoneState.BUSY if u in live and now - live[u] > LAG else PhoneState.IDLE)
                for u, m in PHONES.items()]

    def jobs(self, since):
        db = self.db()
        rows = db.execute("SELECT id, pool, udid, created, ended FROM jobs WHERE created >= ?", (since,)).fetchall()
        db.execute("COMMIT")
        return [RemoteJob(i, p, u, JobState.RUNNING if e is None else JobState.ENDED, c, e, "" if e is None else "completed")
                for i, p, u, c, e in rows]

    def launch(self, request):
        say(f"CALLED {time.monotonic()}")  # when the daemon called the launcher (one clock, all processes)
        time.sleep(self.rng.uniform(0, 0.05))
        db = self.db()
        live = {u for (u,) in db.execute("SELECT udid FROM jobs WHERE ended IS NULL")}
        udid = request.udid
        if not udid:  # the cloud picks a phone of the model
            udid = next((u for u, m in sorted(PHONES.items()) if m == "S" and u not in live), "")
        if udid and udid in live:
            db.execute("INSERT INTO doubles VALUES (?)", (udid,))
        job_id = uuid.uuid4().hex
        db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, NULL)", (job_id, request.pool.name, udid, time.time()))
        db.execute("COMMIT")
        say(f"CREATED {job_id}")
        time.sleep(self.rng.uniform(0, 0.05))
        return LaunchResult(True, job_id=job_id)


def spec():
    return RoleSpec("disk", DiskFleet, options={"path": Option(str, "", "the fleet's SQLite file")})


@hookimpl
def provisioner_queue_sources():
    yield spec()


@hookimpl
def provisioner_device_providers():
    yield spec()


@hookimpl
def provisioner_job_launchers():
    yield spec()
'''

ROUNDS = 20


def fleet_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT, pool TEXT, udid TEXT, created REAL, ended REAL)")
    db.execute("CREATE TABLE IF NOT EXISTS doubles (udid TEXT)")
    return db


class Daemon:
    """``provisioner run`` in a process; its output lines in a queue, read by a thread."""

    def __init__(self, config: Path, site: Path, **env: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(site), PROVISIONER_PLUGINS="diskfleet", **env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provisioner", "run", "-c", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, needle: str, count: int = 1, timeout: float = 60.0) -> bool:
        """Block until ``needle`` has come ``count`` more times; False if the output ends or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while count > 0:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if line is None:
                return False
            self.seen.append(line)
            count -= needle in line
        return True

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)


def disk_world(tmp_path: Path, interval: float, postgresql: bool) -> tuple[Path, Path, sqlite3.Connection]:
    """The fleet on disk (as a plugin distribution on a site directory) and a config of two pools using it, one
    pinned and one targeting a selector; the PostgreSQL ledger's URL in PROVISIONER_TEST_LEDGER when asked.
    Returns (config, site, fleet database)."""
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "provisioner-diskfleet", "diskfleet", FLEET)
    fleet = tmp_path / "fleet.sqlite3"
    db = fleet_db(fleet)
    ledger = 'ledger = "postgresql"\n        ledger_url_env = "PROVISIONER_TEST_LEDGER"' if postgresql else ""
    config = tmp_path / "c.toml"
    config.write_text(textwrap.dedent(f"""
        [provisioner]
        interval = {interval}
        launch_interval = 0
        launch_concurrency = 2
        max_startup_seconds = 5
        state_dir = "state"
        seed = 7
        {ledger}
        [defaults]
        queue_source = "disk"
        device_provider = "disk"
        launcher = "disk"
        [pools.pin]
        queue = "proj/pin"
        udids = ["P0", "P1", "P2", "P3"]
        [pools.sel]
        queue = "proj/sel"
        selector = {{ model = "S" }}
        targeting = "selector"
        [plugins.disk]
        path = "{fleet}"
    """))
    return config, site, db


def test_twenty_kills_lose_no_job_and_book_no_phone_twice(tmp_path: Path, backend, monkeypatch):
    config, site, db = disk_world(tmp_path, 1, backend.name == "postgresql")
    monkeypatch.setenv("PROVISIONER_TEST_LEDGER", backend.url)
    rng = random.Random(20261130)
    for _ in range(ROUNDS):
        daemon = Daemon(config, site)
        started = time.time()
        assert daemon.wait_for("cycle 1:"), "".join(daemon.seen)  # its first cycle: the last round's jobs adopted
        db.execute("UPDATE jobs SET ended = ? WHERE ended IS NULL AND created < ?", (time.time(), started))
        daemon.wait_for("CREATED", rng.randint(0, 4), timeout=10)  # a random moment: after 0 to 4 new jobs...
        if rng.random() < 0.5:
            daemon.wait_for("launched job", 1, timeout=rng.uniform(0, 0.1))  # ...and a little later, sometimes
        daemon.kill()

    final = Daemon(config, site)
    assert final.wait_for("cycle 8:"), "".join(final.seen)  # past max_startup_seconds: every orphan resolved
    final.proc.send_signal(signal.SIGTERM)
    assert final.proc.wait(60) == 0

    created = [row[0] for row in db.execute("SELECT id FROM jobs")]
    if backend.name == "sqlite":
        ledger = Ledger(tmp_path / "state" / "ledger.sqlite3", readonly=True)
    else:
        ledger = backend.open(readonly=True)
    recorded = [row[0] for row in ledger.query("SELECT job_id FROM launches WHERE job_id != ''")]
    assert len(created) >= ROUNDS  # the rounds did launch
    assert sorted(recorded) == sorted(created)  # every job the fleet created is in the ledger, exactly once
    assert list(db.execute("SELECT udid FROM doubles")) == []  # no phone got a second live job
    left = ledger.query("SELECT COUNT(*) FROM launches WHERE state IN ('queued', 'submitting')")[0][0]
    assert left == 0
