"""The simulated fleet's parameters: the ``[plugins.sim]`` table, validated (``ValueError`` names the bad key).

A job's life, and the setting that times each phase (see :mod:`.job`)::

    launch call    upload_seconds        the CLI zips and uploads the job's files (the call takes this long)
    blocked        -                     its phone is taken: it waits (and keeps its claim on the phone)
    initiated      startup_seconds       the cloud prepares the phone; the device list still says `active`
                                         for list_lag_seconds after the job took it
    running        pre_seconds           `pre` installs the worker on the phone's host
                   idle_timeout_seconds  the worker polls the queue; finding no task it gives up (wasted)
                   task_seconds          the worker runs the one task it claimed
                   post_seconds          `post` reboots the phone and waits for it
    ended          cleanup_seconds       the phone is listed `cleanup`, then `active` again
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QueueSpec:
    """How tasks appear in one simulated queue: ``burst`` present at start, then ``per_hour`` (Poisson)."""

    burst: int = 0
    per_hour: float = 0.0


ENDPOINTS = ("counts", "workers", "phones", "jobs", "launch")
FAULT_KINDS = ("error", "timeout", "garbage")
FAULT_KEYS = ("start", "end", "endpoints", "kind", "rate", "timeout_seconds", "went_through")


@dataclass(frozen=True)
class FaultSpec:
    """A window during which calls to some endpoints fail.

    ``start`` and ``end`` are seconds after the fleet was created; ``rate`` is the share of calls that fail;
    ``kind`` is ``error`` (an HTTP 5xx), ``garbage`` (an answer that cannot be parsed) or ``timeout`` (no answer:
    the call costs ``timeout_seconds`` of clock time, then fails). ``went_through`` is the share of launches
    that time out but still reached the cloud.
    """

    start: float
    end: float
    endpoints: tuple[str, ...] = ENDPOINTS
    kind: str = "error"
    rate: float = 1.0
    timeout_seconds: float = 30.0
    went_through: float = 0.5


PHASE_KEYS = (
    "upload_seconds", "startup_seconds", "pre_seconds", "idle_timeout_seconds", "task_seconds", "post_seconds",
    "cleanup_seconds", "list_lag_seconds",
)


@dataclass(frozen=True)
class FleetConfig:
    """The simulation's parameters (the ``[plugins.sim]`` table, validated)."""

    seed: int | str = 0
    phones: int = 20
    models: tuple[str, ...] = ("Galaxy A55 5G", "Galaxy A51")
    os_versions: tuple[str, ...] = ("14", "11")
    udid_prefix: str = "SIM"
    queues: Mapping[str, QueueSpec] = field(default_factory=dict)
    upload_seconds: float = 0.0
    startup_seconds: float = 60.0
    pre_seconds: float = 150.0
    idle_timeout_seconds: float = 600.0  # production's idleTimeoutSecs
    task_seconds: float = 600.0
    post_seconds: float = 60.0
    cleanup_seconds: float = 30.0
    list_lag_seconds: float = 60.0
    launch_failure_rate: float = 0.0
    quarantined: tuple[str, ...] = ()
    faulty: tuple[str, ...] = ()
    faults: tuple[FaultSpec, ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FleetConfig:
        """Build from a ``[plugins.sim]`` table (missing keys take the defaults); ``ValueError`` names a bad key."""
        base = cls()
        get = options.get
        return cls(
            seed=_seed(get("seed", base.seed)),
            phones=_count(get("phones", base.phones), "phones"),
            models=_names(get("models", base.models), "models"),
            os_versions=_names(get("os_versions", base.os_versions), "os_versions"),
            udid_prefix=str(get("udid_prefix", base.udid_prefix)),
            queues=_queues(get("queues", {})),
            **{key: _seconds(get(key, getattr(base, key)), key) for key in PHASE_KEYS},
            launch_failure_rate=_rate(get("launch_failure_rate", base.launch_failure_rate)),
            quarantined=_names(get("quarantined", ()), "quarantined", allow_empty=True),
            faulty=_names(get("faulty", ()), "faulty", allow_empty=True),
            faults=_faults(get("faults", ())),
        )

    def udids(self) -> list[str]:
        width = max(4, len(str(self.phones - 1)))
        return [f"{self.udid_prefix}{i:0{width}d}" for i in range(self.phones)]


def _bad(key: str, reason: str) -> ValueError:
    return ValueError(f"[plugins.sim] {key}: {reason}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seed(value: Any) -> int | str:
    if not isinstance(value, (int, str)) or isinstance(value, bool):
        raise _bad("seed", f"expected an integer, got {value!r}")
    return value


def _count(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad(key, f"expected a non-negative integer, got {value!r}")
    return value


def _seconds(value: Any, key: str) -> float:
    if not _number(value) or value < 0:
        raise _bad(key, f"expected a non-negative number of seconds, got {value!r}")
    return float(value)


def _rate(value: Any, key: str = "launch_failure_rate") -> float:
    if not _number(value) or not 0 <= value <= 1:
        raise _bad(key, f"expected a number from 0 to 1, got {value!r}")
    return float(value)


def _faults(value: Any) -> tuple[FaultSpec, ...]:
    if not isinstance(value, (list, tuple)):
        raise _bad("faults", f"expected an array of tables {{start, end, endpoints, kind}}, got {value!r}")
    return tuple(_fault(table, f"faults[{i}]") for i, table in enumerate(value))


def _fault(table: Any, where: str) -> FaultSpec:
    if not isinstance(table, Mapping):
        raise _bad(where, f"expected a table {{start, end, endpoints, kind}}, got {table!r}")
    unknown = sorted(set(table) - set(FAULT_KEYS))
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(FAULT_KEYS)})")
    for key in ("start", "end"):
        if key not in table:
            raise _bad(f"{where}.{key}", "missing (required)")
    start = _seconds(table["start"], f"{where}.start")
    end = _seconds(table["end"], f"{where}.end")
    if end < start:
        raise _bad(f"{where}.end", f"ends ({end:g}) before it starts ({start:g})")
    endpoints = _names(table.get("endpoints", list(ENDPOINTS)), f"{where}.endpoints")
    for name in endpoints:
        if name not in ENDPOINTS:
            raise _bad(f"{where}.endpoints", f"unknown endpoint {name!r} (known: {', '.join(ENDPOINTS)})")
    kind = table.get("kind", "error")
    if kind not in FAULT_KINDS:
        raise _bad(f"{where}.kind", f"expected one of {', '.join(FAULT_KINDS)}, got {kind!r}")
    return FaultSpec(
        start, end, endpoints, kind, _rate(table.get("rate", 1.0), f"{where}.rate"),
        _seconds(table.get("timeout_seconds", 30.0), f"{where}.timeout_seconds"),
        _rate(table.get("went_through", 0.5), f"{where}.went_through"),
    )


def _names(value: Any, key: str, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
        raise _bad(key, f"expected a list of strings, got {value!r}")
    if not value and not allow_empty:
        raise _bad(key, "expected at least one name")
    return tuple(str(v) for v in value)


def _queues(value: Any) -> dict[str, QueueSpec]:
    if not isinstance(value, Mapping):
        raise _bad("queues", f"expected a table of queue ids, got {value!r}")
    specs = {}
    for queue_id, table in value.items():
        where = f"queues.{queue_id}"
        if not isinstance(table, Mapping):
            raise _bad(where, f"expected a table {{burst = <int>, per_hour = <float>}}, got {table!r}")
        unknown = sorted(set(table) - {"burst", "per_hour"})
        if unknown:
            raise _bad(f"{where}.{unknown[0]}", "unknown key (known: burst, per_hour)")
        burst = _count(table.get("burst", 0), f"{where}.burst")
        per_hour = table.get("per_hour", 0.0)
        if not _number(per_hour) or per_hour < 0:
            raise _bad(f"{where}.per_hour", f"expected a non-negative number, got {per_hour!r}")
        specs[str(queue_id)] = QueueSpec(burst, float(per_hour))
    return specs
