"""The two worlds the cycle's tests run the loop in (one test module per room of ``provisioner.cycle``).

- ``sim_loop``: the loop against the simulated fleet on a virtual clock, with a ``Recorder`` of every event.
- ``fake_loop``: hand-driven fakes (no simulated fleet), so that a test states exactly what the queue, the phones
  and the jobs say at each cycle.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from provisioner.clock import VirtualClock
from provisioner.config import load
from provisioner.ledger import Ledger
from provisioner.loop import Provisioner
from provisioner.manager import PluginManager
from provisioner.model import JobState, LaunchResult, Phone, QueueCounts, RemoteJob, Worker
from provisioner.plugins import Runtime, build
from provisioner.types import PluginContext

SIM_CONFIG = """
[provisioner]
interval = 30
launch_interval = 2
max_startup_seconds = 600
failures_before_hold = 3
retry_backoff_seconds = 60
hold_seconds = 3600
seed = 1
[defaults]
queue_source = "sim"
device_provider = "sim"
launcher = "sim"
[pools.perf]
queue = "proj/perf"
selector = {{ model = "A55" }}
priority = 5
[pools.unit]
queue = "proj/unit"
udids = ["SIM0001", "SIM0003"]
[plugins.sim]
seed = 3
phones = {phones}
models = ["A55", "A51"]
startup_seconds = 210
task_seconds = 600
idle_timeout_seconds = 120
list_lag_seconds = 90
[plugins.sim.queues]
"proj/perf" = {{ burst = {burst} }}
"proj/unit" = {{ burst = {unit} }}
"""


class Recorder:
    """An observer plugin: remembers every event."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def provisioner_cycle(self, report):
        self.events.append(("cycle", report.cycle, len(report.plan.launches)))

    def provisioner_launch_submitted(self, launch, result):
        self.events.append(("submitted", launch.pool, launch.udid, result.job_id))

    def provisioner_launch_failed(self, launch, result):
        self.events.append(("failed", launch.pool, launch.udid, result.detail))

    def provisioner_launch_ended(self, launch):
        self.events.append(("ended", launch.pool, launch.udid, launch.outcome))

    def provisioner_launch_running(self, launch):
        self.events.append(("running", launch.pool, launch.udid, launch.updated_at - launch.submitted_at))


def sim_loop(tmp_path: Path, phones=10, burst=5, unit=1, clock=None, ledger=True, dry_run=False, tweak=None):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(SIM_CONFIG.format(phones=phones, burst=burst, unit=unit)))
    config, problems = load(path)
    assert not problems
    manager = PluginManager(entry_points_=[])
    from provisioner import hookimpl

    recorder = Recorder()
    for name in ("provisioner_cycle", "provisioner_launch_submitted", "provisioner_launch_failed",
                 "provisioner_launch_ended", "provisioner_launch_running"):
        setattr(recorder, name, hookimpl(getattr(recorder, name).__func__).__get__(recorder))
    manager.register(recorder, "recorder")
    clock = clock or VirtualClock()
    context = PluginContext(clock=clock, state_dir=tmp_path / "state", environ={}, job_tag=config.settings.job_tag)
    runtime, problems = build(config, manager, context)
    assert not problems
    if tweak:
        tweak(runtime)
    db = Ledger(tmp_path / "state" / "ledger.sqlite3") if ledger else None
    p = Provisioner(config, runtime, db, clock, hook=manager.hook, dry_run=dry_run, inline=True)
    return p, recorder, clock, runtime.objects["launcher"]["sim"].fleet


CONFIG = """
[provisioner]
interval = 30
launch_interval = 0
seed = 1
claim_seconds = 200
max_startup_seconds = 900
[defaults]
queue_source = "fake"
device_provider = "fake"
launcher = "fake"
[pools.p]
queue = "proj/p"
udids = ["A", "B", "C"]
[pools.s]
queue = "proj/s"
selector = { model = "S" }
targeting = "selector"
"""


class Fake:
    """Queue source, device provider and launcher in one; the test sets what each read answers."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.pending = {"proj/p": 0, "proj/s": 0}
        self.workers_of: dict[str, list[Worker] | None] = {"proj/p": [], "proj/s": []}
        self.phone_list = [Phone(u) for u in "ABC"] + [Phone(f"S{i}", model="S") for i in range(3)]
        self.job_list: list[RemoteJob] = []
        self.launched: list = []
        self.fail_with: Exception | None = None

    def counts(self, queues):
        return {q: QueueCounts(self.pending[q], 0) for q in queues}

    def workers(self, queues):
        return {q: self.workers_of[q] for q in queues}

    def phones(self):
        return self.phone_list

    def jobs(self, since):
        return self.job_list

    def launch(self, request):
        if self.fail_with is not None:
            raise self.fail_with
        job_id = f"job-{len(self.launched)}"
        self.launched.append((request.pool.name, request.udid, job_id))
        return LaunchResult(True, job_id=job_id)

    def job(self, job_id: str, state: JobState = JobState.RUNNING, udid: str | None = None) -> None:
        """Let the provider list a launched job (its pool and phone from the launch)."""
        pool, pinned, _ = next(x for x in self.launched if x[2] == job_id)
        self.job_list = [j for j in self.job_list if j.job_id != job_id]
        self.job_list.append(RemoteJob(job_id, pool, pinned if udid is None else udid, state, self.clock.now() - 1,
                                       self.clock.now() if state is JobState.ENDED else None))


def fake_world(tmp_path: Path, text: str):
    """The config ``text`` loaded, and one ``Fake`` in every role: (config, fake, clock, runtime)."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    config, problems = load(path)
    assert not problems
    clock = VirtualClock()
    fake = Fake(clock)
    runtime = Runtime(config.pools, {role: {"fake": fake} for role in ("queue_source", "device_provider", "launcher")})
    return config, fake, clock, runtime


def fake_loop(tmp_path: Path, extra: str = "", backend=None):
    config, fake, clock, runtime = fake_world(tmp_path, CONFIG + extra)
    ledger = backend.open() if backend is not None else Ledger(tmp_path / "ledger.sqlite3")
    return Provisioner(config, runtime, ledger, clock, inline=True), fake, clock


def launches(report) -> list[tuple[str, str]]:
    return [(x.pool, x.udid) for x in report.plan.launches]
