"""The metrics observer: turns the loop's events into Prometheus metrics, served on a local HTTP endpoint.

Every metric lives in the observer's own registry (never the global one). The endpoint starts at the first
event, so that ``provisioner check`` or ``status``, which build plugins but run no cycle, bind no port.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

from ..hookspecs import hookimpl
from ..warm import is_idle_out

CYCLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
RUNNING_BUCKETS = (30, 60, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 3600)
PHONE_STATES = ("idle", "busy", "quarantined", "held")


class MetricsObserver:
    def __init__(self, address: str, port: int) -> None:
        self.address, self.port = address, port
        self.registry = r = CollectorRegistry()
        self._server: Any = None
        self._started = False
        self._lock = threading.Lock()
        self.pending = Gauge("provisioner_queue_pending", "Tasks pending in the pool's queue (absent: unknown)",
                             ["pool"], registry=r)
        # Whether the pool's counts were read this cycle: 0 while they are unknown (an outage, refused credentials),
        # when provisioner_queue_pending has no series for the pool. A 0/1 series that is always there, rather than
        # NaN: an alert compares it (== 0) and counts it (sum), where NaN poisons every sum and never compares true.
        self.pending_known = Gauge("provisioner_queue_pending_known",
                                   "1: the pool's queue counts were read this cycle; 0: unknown", ["pool"], registry=r)
        self.claimed = Gauge("provisioner_queue_claimed", "Tasks claimed in the pool's queue (absent: unknown)",
                             ["pool"], registry=r)
        self.phones = Gauge("provisioner_pool_phones", "The pool's phones by state", ["pool", "state"], registry=r)
        self.starting = Gauge("provisioner_pool_starting", "The pool's launches still starting", ["pool"], registry=r)
        self.planned = Counter("provisioner_launches_planned", "Launches planned", ["pool"], registry=r)
        self.launches = Counter("provisioner_launches", "Submissions by result (submitted, failed)",
                                ["pool", "result"], registry=r)
        self.ended = Counter("provisioner_launches_ended", "Launches that left flight, by the job's outcome",
                             ["pool", "outcome"], registry=r)
        self.reads = Counter("provisioner_remote_reads", "Remote reads by endpoint and result", ["endpoint", "result"],
                             registry=r)
        self.unknown = Gauge("provisioner_unknown_reads", "Remote reads that failed in the last cycle", registry=r)
        self.strangers = Gauge("provisioner_foreign_jobs",
                               "Live jobs with our job tag that no launch of ours knows (another daemon with the tag?)",
                               registry=r)
        self.ledger_failing = Gauge("provisioner_ledger_write_failing",
                                    "1: a ledger write failed and has not succeeded since (the watchdog is not fed)",
                                    registry=r)
        self.cycles = Counter("provisioner_cycles", "Cycles observed and planned", registry=r)
        self.leader = Gauge("provisioner_leader", "1: this daemon is the active one (plans and launches); 0: a standby",
                            registry=r)
        self.last_cycle = Gauge("provisioner_last_cycle_timestamp_seconds", "When the last cycle started", registry=r)
        self.last_launch = Gauge("provisioner_last_launch_timestamp_seconds", "When the pool's last job was submitted",
                                 ["pool"], registry=r)
        self.cycle_seconds = Histogram("provisioner_cycle_seconds", "Time to observe and plan one cycle",
                                       buckets=CYCLE_BUCKETS, registry=r)
        self.warm = Gauge("provisioner_pool_warm",
                          "The pool's workers started and not claimed beyond its pending tasks (absent: unknown)",
                          ["pool"], registry=r)
        self.warm_target = Gauge("provisioner_pool_warm_target", "Warm workers the pool wants (its warm, or auto's estimate)",
                                 ["pool"], registry=r)
        self.idle_outs = Counter("provisioner_idle_outs", "Warm launches whose worker never claimed a task (idle-outs)",
                                 ["pool"], registry=r)
        self.to_claim = Histogram("provisioner_launch_to_claim_seconds",
                                  "From submission until the worker claimed a task (observed when the launch ends)",
                                  ["pool", "kind"], buckets=RUNNING_BUCKETS, registry=r)
        self.to_running = Histogram("provisioner_launch_to_running_seconds",
                                    "From submission until the job was first seen running (its worker about to claim)",
                                    ["pool"], buckets=RUNNING_BUCKETS, registry=r)

    # -- the endpoint --------------------------------------------------------------------------------
    def start(self) -> None:
        """Serve /metrics, once; a port that cannot be bound is one error line, and the loop goes on."""
        with self._lock:
            if self._started:
                return
            self._started = True
            try:
                self._server, _ = start_http_server(self.port, self.address, registry=self.registry)
            except OSError as exc:
                logger.error("metrics: cannot listen on {}:{}: {}; no metrics endpoint", self.address, self.port, exc)
                return
            logger.info("metrics: serving http://{}:{}/metrics", self.address, self.bound_port)

    @property
    def bound_port(self) -> int | None:
        return self._server.server_address[1] if self._server is not None else None

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    # -- event hooks ---------------------------------------------------------------------------------
    @hookimpl
    def provisioner_cycle(self, report: Any) -> None:
        self.start()
        self.cycles.inc()
        self.leader.set(1 if getattr(report, "active", True) else 0)
        self.last_cycle.set(report.started_at)
        self.cycle_seconds.observe(report.observe_seconds + report.plan_seconds)
        self.unknown.set(len(report.unknown))
        self.ledger_failing.set(1 if getattr(report, "ledger_error", None) else 0)
        self.strangers.set(report.strangers)
        for endpoint, result in _reads(report):
            self.reads.labels(endpoint, result).inc()
        for d in report.plan.decisions:
            _set_or_clear(self.pending, d.pool, d.pending)
            self.pending_known.labels(d.pool).set(0 if d.pending is None else 1)
            _set_or_clear(self.claimed, d.pool, d.claimed)
            for state in PHONE_STATES:
                value = getattr(d, state)
                if value is None:
                    with contextlib.suppress(KeyError):
                        self.phones.remove(d.pool, state)
                else:
                    self.phones.labels(d.pool, state).set(value)
            self.starting.labels(d.pool).set(d.starting)
            _set_or_clear(self.warm, d.pool, d.warm)
            self.warm_target.labels(d.pool).set(d.warm_target)
            self.planned.labels(d.pool).inc(d.launches)

    @hookimpl
    def provisioner_launch_submitted(self, launch: Any, result: Any) -> None:
        self.launches.labels(launch.pool, "submitted").inc()
        self.last_launch.labels(launch.pool).set(launch.updated_at or launch.submitted_at)

    @hookimpl
    def provisioner_launch_failed(self, launch: Any, result: Any) -> None:
        self.launches.labels(launch.pool, "failed").inc()

    @hookimpl
    def provisioner_launch_ended(self, launch: Any) -> None:
        self.ended.labels(launch.pool, launch.outcome or "ended").inc()
        if is_idle_out(launch):
            self.idle_outs.labels(launch.pool).inc()
        elif launch.claimed_at is not None and launch.claimed_at >= launch.submitted_at:
            self.to_claim.labels(launch.pool, launch.kind).observe(launch.claimed_at - launch.submitted_at)

    @hookimpl
    def provisioner_launch_running(self, launch: Any) -> None:
        """A launch's job was first seen running (``launch.updated_at``): proposed hook, see the ops notes."""
        if launch.updated_at >= launch.submitted_at:
            self.to_running.labels(launch.pool).observe(launch.updated_at - launch.submitted_at)


def _reads(report: Any) -> list[tuple[str, str]]:
    """(endpoint, result) for each remote read of the cycle.

    From ``report.reads`` (endpoint -> "ok"/"error") when the host gives it; else the failed ones only, from the
    cycle's one-line ``unknown`` entries ("<plugin>: <what>: <reason>")."""
    reads = getattr(report, "reads", None)
    if reads is not None:
        return sorted((endpoint, str(result)) for endpoint, result in reads.items())
    out = []
    for line in report.unknown:
        parts = line.split(": ", 2)
        endpoint = ": ".join(parts[:2])
        out.append((endpoint, "plugin_error" if len(parts) > 2 and parts[2].startswith("plugin error") else "error"))
    return out


def _set_or_clear(gauge: Gauge, pool: str, value: int | None) -> None:
    """Set the pool's value; an unknown value removes the series rather than pretend it is 0."""
    if value is not None:
        gauge.labels(pool).set(value)
        return
    try:
        gauge.remove(pool)
    except KeyError:
        pass
