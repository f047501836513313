"""Outages and refused credentials are loud: a Taskcluster read that knows no queue is an unknown read of the
cycle (its line, provisioner_unknown_reads, the pending gauges), and a 401/403 names the credentials' variables,
never their values, once in the log and in ``provisioner status``."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from provisioner import PluginContext, QueueCounts
from provisioner.cli.status import snapshot
from provisioner.clock import VirtualClock
from provisioner.config import load
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.manager import PluginManager
from provisioner.plugins import build
from provisioner_taskcluster.settings import Settings
from provisioner_taskcluster.source import TaskclusterQueues
from tc_helpers import Q1, START, StubAdapter, make_response, unknown

TOKEN = "s3cr3t-access-token-value"
ENVIRON = {"TASKCLUSTER_CLIENT_ID": "project/autophone/provisioner", "TASKCLUSTER_ACCESS_TOKEN": TOKEN}
NAMED = "$TASKCLUSTER_CLIENT_ID and $TASKCLUSTER_ACCESS_TOKEN"
REFUSED = {"code": "AuthenticationFailed", "message": "Authentication failed: ext.certificate.expiry < now"}

CONFIG = """
[provisioner]
interval = 30
launch_interval = 0
seed = 1
state_dir = "state"

[defaults]
queue_source = "sim"
device_provider = "sim"
launcher = "sim"

[pools.perf]
queue = "proj/perf"
selector = { model = "A55" }

[pools.unit]
queue = "proj/unit"
selector = { model = "A55" }

[plugins.sim]
seed = 3
phones = 3
models = ["A55"]

[plugins.sim.queues]
"proj/perf" = { burst = 2 }
"proj/unit" = { burst = 0 }

[plugins.metrics]
port = 0
"""


@pytest.mark.vcr
def test_tc_401_names_the_credentials_once_never_their_values(vcr, make_source, tc_log):
    """Hand-made cassette: the queue answers 401 AuthenticationFailed (Taskcluster's code for credentials it
    refuses: expired, revoked), twice, then 200, then 401 again."""
    source = make_source(environ=ENVIRON)
    first = unknown(lambda: source.counts([Q1]))
    assert "HTTP 401 AuthenticationFailed" in first and NAMED in first and "expired or revoked" in first
    assert "client project/autophone/provisioner" in first
    again = unknown(lambda: source.counts([Q1]))  # the host logs this line every cycle: named once is enough
    assert "HTTP 401 AuthenticationFailed" in again and "$TASKCLUSTER" not in again
    assert source.counts([Q1]) == {Q1: QueueCounts(3, 1)}
    assert NAMED in unknown(lambda: source.counts([Q1]))  # refused again after a read passed: named again
    assert vcr.play_count == 4
    assert not any(TOKEN in line for line in tc_log)


def test_tc_403_names_the_credentials_and_anonymous_calls_say_so(make_source, stub_session):
    session, _ = stub_session(lambda request: make_response(request, 403, {"code": "InsufficientScopes"}))
    line = unknown(lambda: make_source(environ=ENVIRON, session=session).workers([Q1]))
    assert "HTTP 403 InsufficientScopes" in line and f"(from {NAMED}) lacks the scopes" in line
    assert TOKEN not in line
    line = unknown(lambda: make_source(session=session).counts([Q1]))
    assert f"the calls are anonymous: set {NAMED}" in line


def test_tc_a_temporary_credentials_certificate_is_named_too(make_source, stub_session):
    session, _ = stub_session(lambda request: make_response(request, 401, REFUSED))
    environ = {**ENVIRON, "TASKCLUSTER_CERTIFICATE": '{"version": 1, "expiry": 1}'}
    line = unknown(lambda: make_source(environ=environ, session=session).counts([Q1]))
    assert "$TASKCLUSTER_CLIENT_ID, $TASKCLUSTER_ACCESS_TOKEN and $TASKCLUSTER_CERTIFICATE" in line


def test_tc_a_read_that_knows_some_queues_answers_them(make_source, stub_session, tc_log):
    def handler(request: requests.PreparedRequest) -> requests.Response:
        if "perf" in (request.url or ""):
            return make_response(request, 500, {"code": "InternalError"})
        return make_response(request, 200, {"pendingTasks": 2, "claimedTasks": 0})

    session, _ = stub_session(handler)
    q2 = "proj-autophone/gecko-t-lambda-alpha-a55"
    assert make_source(session=session, batch=False, max_attempts=1).counts([Q1, q2]) == {
        Q1: None, q2: QueueCounts(2, 0)}
    assert tc_log[-1].startswith("WARNING taskcluster taskQueueCounts GET") and "HTTP 500" in tc_log[-1]


# -- what the host makes of it -------------------------------------------------------------------------
@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., tuple[Provisioner, object]]]:
    """``daemon(status, body)``: a provisioner on the simulated fleet whose queue source is this plugin, on a
    deployment that answers every call with ``status`` and ``body`` (or ``handler(request)``, when given)."""
    made = []

    def make(status: int = 200, body: dict | None = None, handler: Callable | None = None) -> tuple[Provisioner, object]:
        path = tmp_path / f"c{len(made)}.toml"
        path.write_text(textwrap.dedent(CONFIG))
        config, problems = load(path)
        assert not problems
        clock = VirtualClock(START)
        context = PluginContext(clock=clock, state_dir=tmp_path / "state", environ={}, job_tag=config.settings.job_tag)
        manager = PluginManager(entry_points_=[])
        runtime, problems = build(config, manager, context)
        assert not problems
        session = requests.Session()
        session.mount("https://", StubAdapter(handler or (lambda request: make_response(request, status, body))))
        tc_context = PluginContext(clock=clock, state_dir=tmp_path / "state", environ=ENVIRON, seed=1)
        runtime.objects["queue_source"]["sim"] = TaskclusterQueues(
            Settings.resolve({"max_attempts": 2, "backoff": 0.1}, ENVIRON), tc_context, session=session)
        ledger = Ledger(config.settings.state_dir / f"ledger{len(made)}.sqlite3")
        p = Provisioner(config, runtime, ledger, clock, hook=manager.hook, inline=True)
        made.append((runtime, ledger))
        return p, runtime

    yield make
    for runtime, ledger in made:
        runtime.close()
        ledger.close()


def test_an_outage_is_an_unknown_read_of_the_cycle(daemon, tc_log):
    p, runtime = daemon(503, {"code": "ServiceUnavailable"})
    report = p.cycle()
    assert [line.split(": ", 2)[:2] for line in report.unknown] == [["sim", "counts"], ["sim", "workers"]]
    assert "(and 1 more failed call)" in report.unknown[1]  # listWorkers: each queue asked, each failed
    assert all("HTTP 503; gave up after 2 attempts" in line for line in report.unknown)
    assert not report.plan.launches
    text = runtime.observers["metrics"].text()
    assert "provisioner_unknown_reads 2.0" in text
    assert 'provisioner_queue_pending_known{pool="perf"} 0.0' in text
    assert 'provisioner_queue_pending{pool="perf"}' not in text  # unknown: no series, never 0
    assert 'provisioner_remote_reads_total{endpoint="sim: counts",result="error"} 1.0' in text
    assert sum("WARNING unknown this cycle: sim: counts: taskcluster taskQueueCounts" in line for line in tc_log) == 1


def test_refused_credentials_are_named_once_in_the_log_and_in_status(daemon, tc_log):
    p, _ = daemon(401, REFUSED)
    for _ in range(3):
        p.cycle()
        p.clock.advance(30)
    named = [line for line in tc_log if NAMED in line]
    assert len(named) == 1 and named[0].startswith("WARNING unknown this cycle: sim: counts:")
    assert sum("HTTP 401 AuthenticationFailed" in line and "unknown this cycle" in line for line in tc_log) == 6
    assert not any(TOKEN in line for line in tc_log)
    p2, runtime2 = daemon(401, REFUSED)  # `provisioner status` is a process of its own
    snap = snapshot(p2.config, runtime2, p2.ledger, p2.clock)
    assert any(NAMED in line and "HTTP 401" in line for line in snap["unknown"])
    assert snap["pools"][0]["pending"] is None


def test_a_queue_left_unknown_is_named_on_the_cycle_line(daemon):
    def handler(request: requests.PreparedRequest) -> requests.Response:
        url = request.url or ""
        if "unit" in url:
            return make_response(request, 500, {"code": "InternalError"})
        if url.endswith("/task-queues/counts"):  # the batch call: 404, one call per queue
            return make_response(request, 404, {"code": "ResourceNotFound"})
        if url.endswith("/counts"):
            return make_response(request, 200, {"pendingTasks": 1, "claimedTasks": 0})
        return make_response(request, 200, {"workers": []})

    p, runtime = daemon(handler=handler)
    report = p.cycle()
    assert report.unknown == ["sim: counts: 1 of 2 unknown: proj/unit", "sim: workers: 1 of 2 unknown: proj/unit"]
    text = runtime.observers["metrics"].text()
    assert 'provisioner_queue_pending_known{pool="perf"} 1.0' in text
    assert 'provisioner_queue_pending_known{pool="unit"} 0.0' in text
    assert "provisioner_unknown_reads 2.0" in text
