"""The metrics observer: off by default, an endpoint on 127.0.0.1 when a port is set, metrics from the loop's events."""

from __future__ import annotations

import socket
import sys
import urllib.request

import pytest
from test_ops_holds import failing_submissions, write

from provisioner import RoleSpec, hookimpl
from provisioner.clock import VirtualClock
from provisioner.config import load
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.manager import PluginManager
from provisioner.metrics.plugin import make_observer
from provisioner.model import Launch, LaunchState
from provisioner.plugins import build
from provisioner.types import PluginContext, RemoteError


def setup_loop(tmp_path, metrics: str = "[plugins.metrics]\nport = 0\n", tweak=None, manager=None, **kwargs):
    config, problems = load(write(tmp_path, extra=metrics, **kwargs))
    assert not problems
    manager = manager or PluginManager(entry_points_=[])
    clock = VirtualClock()
    context = PluginContext(clock=clock, state_dir=tmp_path / "state", environ={}, job_tag=config.settings.job_tag)
    runtime, problems = build(config, manager, context)
    if problems:
        return None, runtime, problems
    if tweak:
        tweak(runtime)
    ledger = Ledger(config.settings.state_dir / "ledger.sqlite3")
    p = Provisioner(config, runtime, ledger, clock, hook=manager.hook, inline=True)
    return p, runtime, clock


def scrape(observer) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{observer.bound_port}/metrics", timeout=10) as response:
        return response.read().decode()


def value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in the metrics")


def test_metrics_from_a_run_on_the_simulated_fleet(tmp_path):
    p, runtime, clock = setup_loop(tmp_path, tweak=failing_submissions("SIM0003", "CLI exited 1"), perf=3, unit=2)
    observer = runtime.observers["metrics"]
    try:
        assert observer.bound_port is None  # building binds nothing: check and status never listen
        for _ in range(30):
            p.cycle()
            clock.advance(30)
        assert observer.address == "127.0.0.1" and observer.bound_port
        text = scrape(observer)
    finally:
        runtime.close()
    assert observer.bound_port is None  # closed with the runtime
    assert value(text, 'provisioner_launches_total{pool="perf",result="submitted"}') == 3
    assert value(text, 'provisioner_launches_total{pool="unit",result="submitted"}') == 2  # both tasks on SIM0001
    assert value(text, 'provisioner_launches_total{pool="unit",result="failed"}') == 3  # then SIM0003 is held
    assert value(text, 'provisioner_launches_ended_total{outcome="completed",pool="perf"}') == 3
    assert value(text, 'provisioner_queue_pending{pool="perf"}') == 0
    assert value(text, 'provisioner_pool_phones{pool="perf",state="idle"}') == 3
    assert value(text, 'provisioner_pool_phones{pool="unit",state="held"}') == 1
    assert value(text, 'provisioner_pool_starting{pool="perf"}') == 0
    assert value(text, "provisioner_cycles_total") == 30
    assert value(text, "provisioner_cycle_seconds_count") == 30
    assert value(text, "provisioner_last_cycle_timestamp_seconds") == clock.now() - 30
    assert value(text, 'provisioner_last_launch_timestamp_seconds{pool="perf"}') > 0
    assert value(text, "provisioner_unknown_reads") == 0


def test_unknown_reads_are_counted_and_unknown_counts_are_absent(tmp_path):
    calls = {"n": 0}

    def break_counts(runtime):
        source = runtime.objects["queue_source"]["sim"]
        real = source.counts

        def counts(queues):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RemoteError("GET counts: HTTP 500")
            if calls["n"] == 3:
                raise ValueError("garbage")
            return real(queues)

        source.counts = counts

    p, runtime, clock = setup_loop(tmp_path, tweak=break_counts, perf=3)
    observer = runtime.observers["metrics"]
    try:
        p.cycle()
        assert 'provisioner_queue_pending{pool="perf"} 3.0' in observer.text()
        p.cycle()
        text = observer.text()
        assert 'provisioner_queue_pending{pool="perf"}' not in text  # unknown is absent, never 0
        assert value(text, 'provisioner_remote_reads_total{endpoint="sim: counts",result="error"}') == 1
        assert value(text, "provisioner_unknown_reads") == 1
        p.cycle()
        text = observer.text()
        assert value(text, 'provisioner_remote_reads_total{endpoint="sim: counts",result="plugin_error"}') == 1
        p.cycle()
        assert value(observer.text(), "provisioner_unknown_reads") == 0
    finally:
        runtime.close()


def test_off_without_a_port(tmp_path):
    p, runtime, _ = setup_loop(tmp_path, metrics="")
    assert runtime.observers == {}
    p.cycle()  # and the loop runs as ever
    _, runtime, _ = setup_loop(tmp_path, metrics='[plugins.metrics]\naddress = "0.0.0.0"\n')
    assert runtime.observers == {}


def test_its_table_is_validated(tmp_path):
    _, _, problems = setup_loop(tmp_path, metrics="[plugins.metrics]\nprot = 9100\n")
    assert [str(x).split(": ", 1)[1] for x in problems] == [
        "plugins.metrics.prot: unknown key (known keys: address, port)"
    ]
    _, _, problems = setup_loop(tmp_path, metrics="[plugins.metrics]\nport = 70000\n")
    assert [str(x).split(": ", 1)[1] for x in problems] == [
        "plugins.metrics: observer failed to start: port 70000 is not a TCP port (0-65535)"
    ]
    _, _, problems = setup_loop(tmp_path, metrics='[plugins.metrics]\nport = "9100"\n')
    assert "plugins.metrics.port: must be an integer" in str(problems[0])
    _, _, problems = setup_loop(tmp_path, metrics="[plugins.nosuch]\nport = 1\n")
    assert "plugins.nosuch: unknown plugin" in str(problems[0])


def test_without_prometheus_client_it_says_so_in_one_line(monkeypatch, log_lines):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "provisioner.metrics.observer", raising=False)
    assert make_observer({"port": 9100, "address": "127.0.0.1"}, PluginContext()) is None
    lines = [line for line in log_lines if "metrics are off" in line]
    assert len(lines) == 1 and "pip install 'provisioner[metrics]'" in lines[0]


def test_a_port_in_use_is_one_error_and_the_loop_goes_on(tmp_path, log_lines):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p, runtime, clock = setup_loop(tmp_path, metrics=f"[plugins.metrics]\nport = {port}\n", perf=2)
        try:
            assert len(p.cycle().plan.launches) == 2
            clock.advance(30)
            p.cycle()
        finally:
            runtime.close()
    assert sum(f"metrics: cannot listen on 127.0.0.1:{port}" in line for line in log_lines) == 1


def test_time_to_running_from_the_proposed_hook(tmp_path):
    observer = make_observer({"port": 0, "address": "127.0.0.1"}, PluginContext())
    launch = Launch("x", "perf", "SIM0002", LaunchState.RUNNING, 1000.0, updated_at=1210.0)
    observer.provisioner_launch_running(launch=launch)
    text = observer.text()
    assert value(text, 'provisioner_launch_to_running_seconds_count{pool="perf"}') == 1
    assert value(text, 'provisioner_launch_to_running_seconds_sum{pool="perf"}') == 210
    observer.close()  # never started: nothing to stop


def test_a_broken_observer_offer_is_skipped_and_a_taken_name_is_one_line(tmp_path):
    class Broken:
        @hookimpl
        def provisioner_observers(self):
            yield "not a RoleSpec"

    class Other:
        @hookimpl
        def provisioner_observers(self):
            yield RoleSpec("metrics", lambda options, context: None)  # the built-in's name, taken

    manager = PluginManager(entry_points_=[])
    broken = manager.register(Broken(), "broken")
    assert broken.error == "TypeError: provisioner_observers returned str, not RoleSpec"
    p, runtime, problems = setup_loop(tmp_path, manager=manager)
    assert set(runtime.observers) == {"metrics"}  # the built-in's; the broken plugin left nothing behind
    runtime.close()
    manager.register(Other(), "other")
    p, runtime, problems = setup_loop(tmp_path, manager=manager)
    assert [str(x).split(": ", 1)[1] for x in problems] == [
        "plugins.metrics: observer 'metrics' is offered by both provisioner (metrics) and local (other): uninstall one"
    ]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Scrapes go straight to 127.0.0.1, whatever proxy the environment names."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_a_ledger_that_cannot_be_written_is_a_metric(tmp_path, monkeypatch):
    import sqlite3

    p, runtime, clock = setup_loop(tmp_path, perf=3)
    observer = runtime.observers["metrics"]

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(p.ledger, "update", locked)
    try:
        p.cycle()  # its launches cannot be recorded: the report was made before them
        assert value(observer.text(), "provisioner_ledger_write_failing") == 0
        clock.advance(30)
        p.cycle()
        assert p.ledger_error and value(observer.text(), "provisioner_ledger_write_failing") == 1
    finally:
        runtime.close()
