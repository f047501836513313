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
    """What the host hands to every factory (``factory(options, context)``), one per process.

    Fields:

    - ``clock``: the one source of time (``Clock``). Read ``clock.now()`` for what is recorded or compared with a
      remote service's timestamps, ``provisioner.monotonic(clock)`` for deadlines, intervals and backoffs (a step
      of the wall clock moves it not), and wait with ``clock.sleep(s)``; never ``time.time()``/``time.sleep()``:
      tests and ``provisioner simulate`` run the host on a ``VirtualClock`` (whose ``step`` moves the wall alone).
    - ``state_dir``: the directory (0700) where the ledger lives; a plugin keeps its own files under it (e.g.
      ``state_dir / "jobs"``). Absolute once the config is loaded.
    - ``config_dir``: the directory of the config file. A relative path in a plugin's options is relative to it,
      not to the working directory (systemd starts the daemon in ``/``): use ``resolve(path)``.
    - ``environ``: the environment to read secrets from (variables named by ``Option(..., env=True)`` keys).
      Never read ``os.environ`` directly: tests hand in their own mapping.
    - ``seed``: the config's seed (``[provisioner] seed``), for plugins that draw random numbers.
    - ``job_tag``: the first label of every job the host launches (see ``LaunchRequest.labels``); how a device
      provider tells our jobs from others.
    - ``dry_run``: the daemon runs with ``--dry-run`` (or serves ``provisioner status``): ``launch()`` will not be
      called; a plugin must not start or write anything it would not in a real run either.
    - ``shared``: a dict where plugins that cooperate (the simulated queue, phones and launcher) share objects;
      key it by your distribution's name.
    """

    clock: Clock = field(default_factory=SystemClock)
    state_dir: Path = Path("state")
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    seed: int = 0
    job_tag: str = "provisioner"
    dry_run: bool = False
    shared: dict[str, Any] = field(default_factory=dict)
    config_dir: Path = field(default_factory=Path.cwd)

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """``path`` as the config means it: ``~`` expanded; absolute stays, relative is under ``config_dir``.

        Example: with the config in ``/etc/provisioner/``, ``resolve("phones.txt")`` is
        ``/etc/provisioner/phones.txt`` whatever the working directory.
        """
        expanded = Path(path).expanduser()
        return expanded if expanded.is_absolute() else Path(self.config_dir) / expanded


@runtime_checkable
class QueueSource(Protocol):
    """Reports, per queue, the pending and claimed counts and what it records of each worker.

    The host calls each method once per cycle with every queue of the pools that name this source. Both return a
    mapping with an entry for every queue asked (a missing one counts as unknown). A remote call that fails, times
    out or answers garbage makes the queues it concerns ``None`` (unknown: no launch for their pools this cycle);
    raising ``RemoteError`` makes every queue of the call unknown. Any other exception is a plugin error, logged
    and treated as unknown too. Each call returns within the cycle's time (``interval``), retries included,
    waiting only with ``context.clock.sleep``.
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
    """Reports the phones and the provider's live (and recently ended) jobs.

    **The contract with the launcher.** Every job the host launches carries the labels of its
    ``LaunchRequest``: ``(job_tag, pool, udid)``, where ``udid`` is empty when the launch names no phone (a pool
    with ``targeting = "selector"`` or ``"group"``: the cloud picks the phone, among the phones matching the
    selector or among the group's members, ``pool.udids``). ``jobs()`` finds our jobs by
    the first label (``context.job_tag``) and reports each as a ``RemoteJob`` with ``pool`` and ``udid`` read back
    from the labels (``udid`` may stay empty, or be the phone the cloud placed the job on, once known). How the
    labels travel (job tags, a name, a file) is the launcher's and provider's business, as long as they agree.
    See ``RemoteJob`` for what the host matches on.
    """

    def phones(self) -> Sequence[Phone]:
        """Every phone of the cloud with its state, each UDID once and a valid name (``provisioner.values``).

        Raises ``RemoteError`` when the list is unknown, never returns an empty list for it: an empty list says
        the cloud has no phone.
        """
        ...

    def jobs(self, since: float) -> Sequence[RemoteJob]:
        """Our jobs (found by their labels) created at or after ``since``, live or ended (with ``ended_at``).

        Raises ``RemoteError`` when the list is unknown (then which phones are free is unknown too: no launch).
        """
        ...


@runtime_checkable
class JobLauncher(Protocol):
    """Starts one job for one pool on one phone (or on a selector, or a group) and reports how the submission went.

    The job carries ``request.labels`` (``(job_tag, pool, udid)``; see ``DeviceProvider``) so that the pool's
    device provider lists it in ``jobs()``. ``request.udid`` is empty when the cloud picks the phone
    (``request.pool.cloud_picks``: ``targeting`` is ``selector`` or ``group``): the launch names no phone, and the
    launcher must accept that where its cloud can place the job itself (on the phones matching
    ``pool.selector``, or on the group whose members are ``pool.udids``).

    **Dry run.** The host never calls ``launch()`` in a dry run (``run --dry-run``, ``status``). A launcher may
    define ``render(request) -> str``: the host calls it once per pool and logs the text (secrets redacted) as
    what it would launch. ``render`` must start nothing, submit nothing and write nothing outside a temporary
    directory it removes.
    """

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Submit the job. May block (the host calls it on a worker thread); must return, never hang.

        Success: ``LaunchResult(ok=True, job_id=...)``, the id ``jobs()`` will report. A failure is a
        ``LaunchResult(ok=False, detail=...)`` with a one-line reason that holds no secret, not an exception.
        """
        ...


@dataclass(frozen=True)
class RoleSpec:
    """A named implementation of one role, as returned by a role hook.

    ``factory(options, context)`` builds the object from the validated ``[plugins.<name>]`` table. It must
    not touch the network. The built object may also define:

    - ``check(pools, network: bool) -> list[str]``: problems as one-line strings, for ``provisioner check``
      (and ``run`` before its first cycle); with ``network`` it may call the remote service.
    - ``close()``: release what the object holds (HTTP sessions, processes, threads). The host calls it exactly
      once when it is done with the object: when the daemon stops, after the submissions in flight have
      returned (``Provisioner.run``), and after ``check``, ``status`` or a simulation. An exception in it is
      logged, never fatal.
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


@dataclass(frozen=True)
class ImportResult:
    """What a :class:`ConfigImporter` made of another tool's configuration."""

    toml: str  # a config.toml (or the part of one: pools and plugin tables) equivalent to the file
    not_carried: tuple[str, ...] = ()  # one line per setting that could not be carried over, and why


@dataclass(frozen=True)
class ConfigImporter:
    """Reads another tool's configuration (one format), for ``provisioner import-devicepool FILE``.

    ``accepts(document)`` says whether the parsed YAML/JSON ``document`` is in this importer's format;
    ``convert(document, source)`` turns it into an :class:`ImportResult` (``source`` names the file, for
    messages). Both must be pure: no network, no file written. A document no importer accepts is refused.
    """

    name: str
    description: str
    accepts: Callable[[Any], bool]
    convert: Callable[[Any, str], ImportResult]


__all__ = [
    "REQUIRED",
    "ConfigImporter",
    "ImportResult",
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
