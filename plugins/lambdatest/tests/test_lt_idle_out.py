"""A warm worker that idles out, through the daemon's real loop with this plugin's device provider (the
HyperExecute job list and the phone list served on 127.0.0.1) and launcher (a fake CLI): run-worker.sh ends such a
job normally, so LambdaTest reports it `completed` (test_lt_payload_run.py holds the payload's side); the host
counts it as an idle-out, not as a failure of the phone, and never holds the phone for it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provisioner import PluginContext, QueueCounts
from provisioner.clock import VirtualClock
from provisioner.config import load
from provisioner.idle_outs import idle_outs_ended_since
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.model import LaunchState
from provisioner.plugins import Runtime
from provisioner.warm import is_idle_out
from provisioner_lambdatest import HyperExecuteLauncher, LambdaTestDevices

from lt_support import ENVIRON, NOW, FakeCli

UDID = "R5CXC1HZK0W"
POOL = "a55-perf"
QUEUE = "proj-autophone/gecko-t-lambda-perf-a55"
IDLE_TIMEOUT = 600


class Cloud(BaseHTTPRequestHandler):
    """The device list and the job list, as the test sets them (``server.answers``)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps(self.server.answers["/jobs" if self.path.startswith("/jobs") else "/devices"]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cloud() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Cloud)
    server.answers = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Queue:
    """No task ever pending (the launches are warm), and no worker ever claiming one."""

    def counts(self, queues):
        return {q: QueueCounts(0, 0) for q in queues}

    def workers(self, queues):
        return {q: [] for q in queues}


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def world(tmp_path: Path, cloud: ThreadingHTTPServer) -> tuple[Provisioner, VirtualClock, FakeCli]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config_path = tmp_path / "c.toml"
    config_path.write_text(f"""
[provisioner]
interval = 30
launch_interval = 0
seed = 1
job_tag = "provisioner"
[pools.{POOL}]
queue = "{QUEUE}"
udids = ["{UDID}"]
queue_source = "q"
device_provider = "lambdatest"
launcher = "hyperexecute"
warm = 1
idle_timeout = {IDLE_TIMEOUT}
launch = {{ client_id_env = "TC_CLIENT_A55", access_token_env = "TC_TOKEN_A55" }}
""")
    config, problems = load(config_path)
    assert not problems
    clock = VirtualClock(NOW)
    context = PluginContext(clock=clock, state_dir=tmp_path / "state", environ=dict(ENVIRON), job_tag="provisioner")
    cli = FakeCli(tmp_path / "bin", context.state_dir / "hyperexecute-cli.lock")
    cli.mode = "numbered"
    base = f"http://127.0.0.1:{cloud.server_address[1]}"
    devices = LambdaTestDevices({"devices_url": f"{base}/devices", "jobs_url": f"{base}/jobs"}, context)
    launcher = HyperExecuteLauncher({"cli": str(cli.path)}, context)
    runtime = Runtime(config.pools, {"queue_source": {"q": Queue()}, "device_provider": {"lambdatest": devices},
                                     "launcher": {"hyperexecute": launcher}})
    return Provisioner(config, runtime, Ledger(tmp_path / "ledger.sqlite3"), clock, inline=True), clock, cli


def serve(cloud: ThreadingHTTPServer, phone: str, jobs: list[dict[str, Any]]) -> None:
    cloud.answers["/devices"] = {"data": {"private_cloud_devices": [  # type: ignore[attr-defined]
        {"udid": UDID, "name": "Galaxy A55 5G", "fullOsVersion": "14", "os": "android", "os_version": 14,
         "status": phone}]}, "message": "", "status": "success"}
    cloud.answers["/jobs"] = {"data": jobs, "metadata": {"hasmore": False}}  # type: ignore[attr-defined]


def job(job_id: str, created: float, status: str, ended: float | None = None) -> dict[str, Any]:
    return {"id": job_id, "job_number": int(job_id[-4:]), "status": status, "created_at": iso(created),
            "end_time": iso(ended) if ended else None, "job_label": json.dumps(["provisioner", POOL, UDID]),
            "job_summary": None}


def run_warm_jobs(p: Provisioner, clock: VirtualClock, cloud: ThreadingHTTPServer, ending: str, rounds: int):
    """``rounds`` warm launches on the one phone, each job running unclaimed past the idle timeout and then ending
    with status ``ending``. Returns the launches (as the ledger has them) and the last cycle's report."""
    jobs: list[dict[str, Any]] = []
    launch_ids = []
    serve(cloud, "active", jobs)
    report = p.cycle()
    for number in range(1, rounds + 1):
        assert [(x.pool, x.udid, x.kind) for x in report.plan.launches] == [(POOL, UDID, "warm")], number
        (launch,) = p.ledger.in_flight()
        launch_ids.append(launch.id)
        job_id = f"0f8fad5b-d9cb-469f-a165-{number:012d}"  # the fake CLI's numbered job ids
        assert launch.job_id == job_id
        started = clock.now()
        jobs.insert(0, job(job_id, started, "running"))
        serve(cloud, "busy", jobs)
        for _ in range((IDLE_TIMEOUT + 300) // 150):  # setup, then the worker waits for a task that never comes
            clock.advance(150)
            assert p.cycle().plan.launches == ()
        jobs[0] = job(job_id, started, ending, clock.now())
        serve(cloud, "active", jobs)
        clock.advance(30)
        report = p.cycle()  # reads the ended job; the phone free again, the next warm worker is planned
    return [p.ledger.get(launch_id) for launch_id in launch_ids], report


def test_warm_workers_that_idle_out_are_idle_outs_and_never_hold_the_phone(
    tmp_path: Path, cloud: ThreadingHTTPServer
) -> None:
    p, clock, cli = world(tmp_path, cloud)
    (first,), _ = run_warm_jobs(p, clock, cloud, "completed", 1)
    assert first.state is LaunchState.ENDED and first.outcome == "completed" and first.claimed_at is None
    assert is_idle_out(first) and idle_outs_ended_since(p.ledger, NOW) == {POOL: 1}
    assert p.holds(clock.now()) == {}
    # three in a row on the one phone (the job-failure hold's count): still no hold, the next warm worker goes on
    p, clock, cli = world(tmp_path / "three", cloud)
    launches, report = run_warm_jobs(p, clock, cloud, "completed", 3)
    assert all(is_idle_out(launch) for launch in launches)
    assert idle_outs_ended_since(p.ledger, NOW) == {POOL: 3}
    assert p.holds(clock.now()) == {} and p.ledger.holds(clock.now()) == []
    assert [(x.udid, x.kind) for x in report.plan.launches] == [(UDID, "warm")]


def test_the_same_jobs_ending_failed_hold_the_phone(tmp_path: Path, cloud: ThreadingHTTPServer) -> None:
    """What production's payload made of every idle-out (start-worker's 1 ended the job `failed`)."""
    p, clock, cli = world(tmp_path, cloud)
    launches, report = run_warm_jobs(p, clock, cloud, "failed", 3)
    assert not any(is_idle_out(launch) for launch in launches) and idle_outs_ended_since(p.ledger, NOW) == {}
    assert p.holds(clock.now())[UDID][1] == "held: 3 failed jobs in a row" and report.plan.launches == ()
