"""What plugins hand to the host: role specs, declared options, the context and the role protocols."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .clock import Clock, SystemClock
from .model import LaunchRequest, LaunchResult, Phone, Pool, QueueCounts, RemoteJob, Worker

REQUIRED: Any = object()  # marks an Option without default


class RemoteError(Exception):
    """A remote call failed, timed out or answered garbage. The host treats the data as unknown.

    The message is one line, names the endpoint and the reason, and holds no secret.
    """


@dataclass(frozen=True)
class Option:
    """One key a plugin accepts in its ``[plugins.<name>]`` table or in a pool's ``launch`` table.

    ``env=True`` marks a key whose value is the *name* of an environment variable holding a secret:
    ``provisioner check`` reports the variable when it is unset, and the value is never logged.
    ``min`` and ``max`` bound a number (inclusive); without them a number must still be finite and an
    integer fit in 64 bits.
    """

    type: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    choices: tuple[Any, ...] = ()
    env: bool = False
    min: float | None = None
    max: float | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class PluginContext:
    """What the host hands to every factory: the clock, where to keep state, and the environment."""

    clock: Clock = field(default_factory=SystemClock)
    state_dir: Path = Path("state")
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    seed: int = 0
    job_tag: str = "provisioner"  # first label of every job we launch; how our jobs are told from others
    dry_run: bool = False
    # A place for plugins that cooperate (e.g. the simulated queue, phones and launcher) to share objects.
    shared: dict[str, Any] = field(default_factory=dict)



@runtime_checkable
class QueueSource(Protocol):
    """Reports, per queue, the pending and claimed counts and what it records of each worker.

    The host calls each method once per cycle with every queue of the pools that name this source.
    """

    def counts(self, queues: Sequence[str]) -> Mapping[str, QueueCounts | None]:
        """Counts for each queue id; ``None`` (never 0) for a queue whose counts are unknown this cycle."""
        ...

    def workers(self, queues: Sequence[str]) -> Mapping[str, Sequence[Worker] | None]:
        """Every worker the queue knows, per queue id, read fresh each cycle; ``None`` when unknown this cycle.

        From it the host learns which workers are quarantined (a pool whose list is unknown gets no launch)
        and when the worker a launch started has claimed a task: until then the launch covers one pending
        task. Example: ``{"proj/a55": [Worker("R5CX...", latest_task="HDbB.../0", first_claim=1.75e9)]}``.
        """
        ...


@runtime_checkable
class DeviceProvider(Protocol):
    """Reports the phones and the provider's live (and recently ended) jobs."""

    def phones(self) -> Sequence[Phone]:
        """Every phone of the cloud with its state. Raises ``RemoteError`` when the list is unknown."""
        ...

    def jobs(self, since: float) -> Sequence[RemoteJob]:
        """Our jobs (found by their labels) created at or after ``since``, live or ended.

        Raises ``RemoteError`` when the list is unknown.
        """
        ...


@runtime_checkable
class JobLauncher(Protocol):
    """Starts one job for one pool on one phone (or on a selector) and reports how the submission went."""

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Submit the job. May block (the host calls it on a worker thread); must return, never hang.

        A failure is a ``LaunchResult(ok=False, detail=...)``, not an exception.
        """
        ...


@dataclass(frozen=True)
class RoleSpec:
    """A named implementation of one role, as returned by a role hook.

    ``factory(options, context)`` builds the object from the validated ``[plugins.<name>]`` table. It must
    not touch the network. The built object may also define ``check(pools, network: bool) -> list[str]``
    (problems as one-line strings, for ``provisioner check``) and ``close()``.
    ``pool_options`` declares the keys a pool may give this plugin in its ``launch`` table (launchers).
    """

    name: str
    factory: Callable[[Mapping[str, Any], PluginContext], Any]
    options: Mapping[str, Option] = field(default_factory=dict)
    pool_options: Mapping[str, Option] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum() or self.name != self.name.lower():
            raise ValueError(f"invalid plugin name {self.name!r}: use lower-case letters, digits, '-' and '_'")
        if not callable(self.factory):
            raise TypeError(f"plugin {self.name!r}: factory is not callable")


__all__ = [
    "REQUIRED",
    "DeviceProvider",
    "JobLauncher",
    "LaunchRequest",
    "LaunchResult",
    "Option",
    "Phone",
    "PluginContext",
    "Pool",
    "QueueCounts",
    "QueueSource",
    "RemoteError",
    "RemoteJob",
    "RoleSpec",
    "Worker",
]
