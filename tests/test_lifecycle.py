"""``close()``: the host calls it on each plugin object exactly once, after the submissions in flight returned,
whether the daemon stops on a signal or after ``--once``."""

from __future__ import annotations

import signal
import textwrap
import threading
from pathlib import Path

from provisioner import LaunchResult, Phone, QueueCounts, RoleSpec, hookimpl
from provisioner.cli.run import SignalWatcher
from provisioner.clock import SystemClock
from provisioner.config import load
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.manager import PluginManager
from provisioner.plugins import build
from provisioner.runtime import context_for

from test_plugins import cli, make_dist

CONFIG = """
[provisioner]
state_dir = "state"
launch_interval = 0
interval = 3600
[pools.a]
queue = "q"
udids = ["PHONE1"]
queue_source = "rec"
device_provider = "rec"
launcher = "rec"
"""


class Rec:
    """One role of the recording plugin: a launch blocks until ``gate`` opens; every step is an event."""

    def __init__(self, role: str, plugin: RecPlugin) -> None:
        self.role, self.plugin = role, plugin

    def counts(self, queues):
        return {q: QueueCounts(1, 0) for q in queues}

    def workers(self, queues):
        return {q: [] for q in queues}

    def phones(self):
        return [Phone("PHONE1")]

    def jobs(self, since):
        return []

    def launch(self, request):
        self.plugin.events.append("launch")
        self.plugin.entered.set()
        assert self.plugin.gate.wait(30)
        self.plugin.events.append("launch returned")
        return LaunchResult(True, job_id="J1")

    def close(self):
        self.plugin.events.append(f"close {self.role}")


class RecPlugin:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.entered, self.gate = threading.Event(), threading.Event()

    @hookimpl
    def provisioner_queue_sources(self):
        yield RoleSpec("rec", lambda o, c: Rec("queue", self))

    @hookimpl
    def provisioner_device_providers(self):
        yield RoleSpec("rec", lambda o, c: Rec("provider", self))

    @hookimpl
    def provisioner_job_launchers(self):
        yield RoleSpec("rec", lambda o, c: Rec("launcher", self))


def daemon(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(CONFIG))
    config, problems = load(path)
    assert not problems
    plugin = RecPlugin()
    manager = PluginManager(entry_points_=[])
    manager.register(plugin, "rec")
    runtime, problems = build(config, manager, context_for(config, SystemClock(), {}))
    assert not problems
    ledger = Ledger(config.settings.state_dir / "ledger.sqlite3")
    return Provisioner(config, runtime, ledger, SystemClock(), hook=manager.hook), plugin, ledger


def run_in_thread(p: Provisioner, stop: threading.Event, **kwargs) -> threading.Thread:
    thread = threading.Thread(target=p.run, args=(stop,), kwargs=kwargs, daemon=True)
    thread.start()
    return thread


CLOSED = ["close queue", "close provider", "close launcher"]


def test_close_comes_once_after_the_submission_in_flight_on_sigterm(tmp_path: Path):
    p, plugin, ledger = daemon(tmp_path)
    stop = threading.Event()
    thread = run_in_thread(p, stop)
    assert plugin.entered.wait(30)
    SignalWatcher(stop).on_signal(signal.SIGTERM)  # what the watcher thread does on the first SIGTERM
    assert not [e for e in plugin.events if e.startswith("close")]  # the launch still runs: nothing closed
    plugin.gate.set()
    thread.join(30)
    assert not thread.is_alive()
    assert plugin.events == ["launch", "launch returned", *CLOSED]
    p.runtime.close()  # `run` closes again in its own finally: nothing is closed twice
    assert plugin.events == ["launch", "launch returned", *CLOSED]
    ledger.close()


def test_close_comes_once_after_the_submission_in_flight_on_once(tmp_path: Path):
    p, plugin, ledger = daemon(tmp_path)
    thread = run_in_thread(p, threading.Event(), max_cycles=1)  # `run --once`
    assert plugin.entered.wait(30)
    assert not [e for e in plugin.events if e.startswith("close")]
    plugin.gate.set()
    thread.join(30)
    assert not thread.is_alive()
    assert plugin.events == ["launch", "launch returned", *CLOSED]
    ledger.close()


PLUGIN = '''
from provisioner import hookimpl, RoleSpec, LaunchResult, Phone, QueueCounts

class Rec:
    def __init__(self, options, context):
        self.log = context.resolve("events.log")
    def note(self, text):
        with open(self.log, "a") as f:
            f.write(text + "\\n")
    def counts(self, queues):
        return {q: QueueCounts(1, 0) for q in queues}
    def workers(self, queues):
        return {q: [] for q in queues}
    def phones(self):
        return [Phone("PHONE1")]
    def jobs(self, since):
        return []
    def launch(self, request):
        self.note("launch")
        return LaunchResult(True, job_id="J1")
    def close(self):
        self.note("close")

@hookimpl
def provisioner_queue_sources():
    yield RoleSpec("rec", Rec)
@hookimpl
def provisioner_device_providers():
    yield RoleSpec("rec", Rec)
@hookimpl
def provisioner_job_launchers():
    yield RoleSpec("rec", Rec)
'''


def test_run_once_closes_each_object_once_after_its_launch(tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "provisioner-rec", "recplugin", PLUGIN, ep_name="rec")
    config = tmp_path / "etc" / "c.toml"
    config.parent.mkdir()
    config.write_text(textwrap.dedent(CONFIG))
    result = cli("run", "-c", str(config), "--once", path=site)
    assert result.returncode == 0, result.stderr
    # one object (one factory plays the three roles), closed once, after the launch; events.log is by the config
    assert (config.parent / "events.log").read_text().splitlines() == ["launch", "close"]
