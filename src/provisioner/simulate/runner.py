"""Runs a scenario on a virtual clock: the real loop (``Provisioner.run`` with the inline submitter), or the
baseline policy, against a fresh simulated fleet built from the same composed config and seed."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from loguru import logger

from ..clock import VirtualClock
from ..config import Settings
from ..ledger import Ledger
from ..loop import CycleReport, Provisioner
from ..model import Phone, Pool
from ..runtime import Loaded, load_all
from ..sim.fleet import Fleet, FleetConfig
from .baseline import Baseline
from .scenario import Scenario, ScenarioError, compose
from .tomlout import dumps

Progress = Callable[[float], None]  # called with the fleet time elapsed so far


@dataclass
class CycleRecord:
    started_at: float
    observed_at: float  # when the plan was made (after every read of the cycle)
    launches: int
    unknown: bool
    plan_seconds: float = 0.0  # wall time of the planner alone
    observe_seconds: float = 0.0  # wall time of reads, reconcile and ledger queries


class PoolPoint(NamedTuple):
    """What the loop saw of one pool at one cycle (for the plots). A named tuple, not a frozen dataclass: a day of a
    large fleet keeps one per pool and cycle (over half a million), and a tuple is made three times faster."""

    at: float  # seconds since the run started
    pending: int | None
    starting: int
    busy: int | None
    idle: int | None
    warm: int | None
    launches: int = 0  # planned at this cycle


@dataclass
class RunResult:
    policy: str  # "provisioner" (or "warm=N" when simulate overrides the pools' warm), or "baseline"
    scenario: Scenario
    seed: int
    settings: Settings
    pools: tuple[Pool, ...]
    fleet_config: FleetConfig
    catalog: list[Phone]
    started_at: float
    stats: dict[str, Any]
    fault_log: list[tuple[float, str, str]]
    cycles: list[CycleRecord] = field(default_factory=list)
    crashes: int = 0  # cycles that raised (the loop logs them and goes on)
    series: dict[str, list[PoolPoint]] = field(default_factory=dict)  # pool -> one point per cycle (the loop only)


class _Observer:
    """Plays the ``provisioner_cycle`` hook: records each cycle and moves the progress bar."""

    def __init__(self, clock: VirtualClock, start: float, progress: Progress | None) -> None:
        self.clock, self.start, self.progress = clock, start, progress
        self.cycles: list[CycleRecord] = []
        self.series: dict[str, list[PoolPoint]] = {}

    def provisioner_cycle(self, report: CycleReport) -> None:
        now = self.clock.now()
        at = report.started_at - self.start
        for d in report.plan.decisions:
            self.series.setdefault(d.pool, []).append(PoolPoint(at, d.pending, d.starting, d.busy, d.idle, d.warm,
                                                                 d.launches))
        self.cycles.append(CycleRecord(
            report.started_at, now, len(report.plan.launches), bool(report.unknown), report.plan_seconds,
            report.observe_seconds,
        ))
        if self.progress is not None:
            self.progress(now - self.start)

    def provisioner_launch_submitted(self, launch: Any, result: Any) -> None:
        """Not needed: the fleet's own books say what was launched."""

    def provisioner_launch_failed(self, launch: Any, result: Any) -> None:
        """Not needed: the fleet counts failed submissions."""

    def provisioner_launch_ended(self, launch: Any) -> None:
        """Not needed: the fleet knows how each job ended."""


def _scratch_dir() -> str | None:
    """Where the throwaway ledger goes: memory-backed when the system has it (a simulation needs no fsync)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@contextmanager
def _loaded(
    settings: Mapping[str, Any], scenario: Scenario, seed: int | None, warm: int | str | None = None,
) -> Iterator[tuple[Loaded, VirtualClock, Path]]:
    clock = VirtualClock()
    with tempfile.TemporaryDirectory(prefix="provisioner-sim-", dir=_scratch_dir()) as tmp:
        state = Path(tmp) / "state"
        path = Path(tmp) / f"{scenario.name}.toml"
        path.write_text(dumps(compose(settings, scenario, seed, state, warm)), encoding="utf-8")
        loaded, problems = load_all(path, clock=clock, environ={})
        if loaded is None or problems:
            lines = [str(p).replace(str(path), str(scenario.path)) for p in problems]
            raise ScenarioError("\n".join(lines) or f"{scenario.path}: cannot be loaded")
        try:
            yield loaded, clock, state
        finally:
            loaded.runtime.close()


def _fleet(loaded: Loaded) -> Fleet:
    providers = {p.device_provider for p in loaded.runtime.pools}
    if providers != {"sim"}:
        raise ScenarioError(f"a scenario runs on the simulated fleet only, not on {', '.join(sorted(providers - {'sim'}))}")
    return loaded.runtime.device_provider("sim").fleet  # type: ignore[attr-defined]


def _result(policy: str, loaded: Loaded, fleet: Fleet, scenario: Scenario, start: float) -> RunResult:
    settings = loaded.config.settings
    return RunResult(
        policy, scenario, int(settings.seed or 0), settings, loaded.runtime.pools, fleet.config, fleet.catalog(), start,
        fleet.stats(), fleet.fault_log(),
    )


@contextmanager
def _count_crashes() -> Iterator[list[int]]:
    """Counts the cycles the loop caught failing (it logs them with their traceback and goes on)."""
    crashes = [0]

    def sink(message: Any) -> None:
        crashes[0] += 1

    handler = logger.add(sink, level="ERROR", filter=lambda record: record["exception"] is not None, format="{message}")
    try:
        yield crashes
    finally:
        logger.remove(handler)


def run_provisioner(
    settings: Mapping[str, Any], scenario: Scenario, seed: int | None = None, progress: Progress | None = None,
    warm: int | str | None = None,
) -> RunResult:
    """The production loop, unchanged: ``Provisioner.run`` with the inline submitter on a virtual clock.
    ``warm`` overrides every pool's ``warm`` (the run is then named ``warm=<value>``)."""
    with _loaded(settings, scenario, seed, warm) as (loaded, clock, state):
        fleet = _fleet(loaded)
        start = clock.now()
        observer = _Observer(clock, start, progress)
        ledger = Ledger(state / "ledger.sqlite3")
        try:
            provisioner = Provisioner(loaded.config, loaded.runtime, ledger, clock, hook=observer, inline=True)
            with _count_crashes() as crashes:
                provisioner.run(threading.Event(), duration=scenario.duration)
        finally:
            ledger.close()
        result = _result("provisioner" if warm is None else f"warm={warm}", loaded, fleet, scenario, start)
        result.cycles, result.crashes, result.series = observer.cycles, crashes[0], observer.series
        return result


def run_baseline(
    settings: Mapping[str, Any], scenario: Scenario, seed: int | None = None, progress: Progress | None = None,
) -> RunResult:
    """The old tool's policy against a fresh fleet built from the same config and seed."""
    with _loaded(settings, scenario, seed) as (loaded, clock, _):
        fleet = _fleet(loaded)
        start = clock.now()
        baseline = Baseline(loaded.runtime.pools, loaded.runtime, clock, loaded.config.settings.job_tag)
        with _count_crashes() as crashes:
            try:
                baseline.run(scenario.duration, progress)
            except Exception:  # noqa: BLE001 - reported as a crash, like the loop's
                logger.opt(exception=True).error("baseline crashed")
        result = _result("baseline", loaded, fleet, scenario, start)
        result.cycles = [CycleRecord(c.started_at, c.observed_at, c.launches, c.unknown) for c in baseline.cycles]
        result.crashes = crashes[0]
        return result
