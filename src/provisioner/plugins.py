"""Turns a validated config into live plugin objects: one per plugin name the pools use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from loguru import logger

from .config import Config, ConfigProblem, missing_env, validate_table
from .manager import ROLES, PluginError, PluginManager
from .model import Pool
from .types import DeviceProvider, JobLauncher, PluginContext, QueueSource

PROTOCOLS = {"queue_source": QueueSource, "device_provider": DeviceProvider, "launcher": JobLauncher}
METHODS = {role: sorted(n for n, v in vars(p).items() if callable(v) and not n.startswith("_")) for role, p in PROTOCOLS.items()}


@dataclass
class Runtime:
    """The live objects, by role and name, and the pools with their launch tables validated."""

    pools: tuple[Pool, ...]
    objects: dict[str, dict[str, Any]] = field(default_factory=lambda: {role: {} for role in PROTOCOLS})
    observers: dict[str, Any] = field(default_factory=dict)  # built observers, registered as hook plugins
    closed: bool = False
    started: bool = False

    def queue_source(self, name: str) -> QueueSource:
        return self.objects["queue_source"][name]

    def device_provider(self, name: str) -> DeviceProvider:
        return self.objects["device_provider"][name]

    def launcher(self, name: str) -> JobLauncher:
        return self.objects["launcher"][name]

    def each(self):
        seen: set[int] = set()
        for role in PROTOCOLS:
            for name, obj in self.objects[role].items():
                if id(obj) not in seen:
                    seen.add(id(obj))
                    yield role, name, obj
        for name, obj in self.observers.items():
            if id(obj) not in seen:
                seen.add(id(obj))
                yield "observer", name, obj

    def start(self) -> None:
        """Call every object's optional ``start()`` once, before the daemon's first cycle (e.g. a launcher ending
        what a crash left running); ``check`` and ``status`` never call it. A failure is one error line."""
        if not self.started:
            self.started = True
            self._call_each("start", "ERROR")

    def close(self) -> None:
        """Close every object that has a ``close()``, each once, however often this is called."""
        if not self.closed:
            self.closed = True
            self._call_each("close", "WARNING")

    def _call_each(self, method: str, level: str) -> None:
        for _, name, obj in self.each():
            call = getattr(obj, method, None)
            if callable(call):
                try:
                    call()
                except Exception as exc:  # noqa: BLE001
                    logger.log(level, "plugin {} failed to {}: {}", name, method, exc)


def build(
    config: Config, manager: PluginManager, context: PluginContext, instantiate: bool = True
) -> tuple[Runtime, list[ConfigProblem]]:
    """Validate the plugin tables and pool launch tables, then (if all is well) build each used plugin once."""
    file = str(config.path)
    problems: list[ConfigProblem] = []
    used = config.plugins_used()

    # Which role specs does each name stand for?
    specs: dict[str, dict[str, Any]] = {}
    for role, names in used.items():
        for name in sorted(names):
            try:
                specs.setdefault(name, {})[role] = manager.spec(role, name)
            except PluginError as exc:
                keys = [f"pools.{p.name}.{role}" for p in config.pools if getattr(p, role) == name]
                problems.append(ConfigProblem(file, keys[0], str(exc)))

    # Observers that take options: always built (with defaults when they have no table); they may stay off.
    for name in manager.names("observer"):
        try:
            specs.setdefault(name, {})["observer"] = manager.spec("observer", name)
        except PluginError as exc:
            problems.append(ConfigProblem(file, f"plugins.{name}", str(exc)))

    # [plugins.<name>] tables: known names, declared keys, named variables set.
    options: dict[str, dict[str, Any]] = {}
    for name, table in config.plugin_options.items():
        if not any(name in manager.names(role) for role in ROLES):
            problems.append(ConfigProblem(file, f"plugins.{name}", "unknown plugin (is it installed? see `provisioner plugins`)"))
    for name, by_role in specs.items():
        declared: dict[str, Any] = {}
        for spec in by_role.values():
            declared.update(spec.options)
        table = config.plugin_options.get(name, {})
        before = len(problems)
        options[name] = validate_table(table, declared, file, f"plugins.{name}", problems)
        if len(problems) == before and isinstance(table, Mapping):
            problems += missing_env(options[name], table, declared, context.environ, file, f"plugins.{name}")

    # Each pool's launch table against its launcher's pool options.
    pools = []
    for pool in config.pools:
        spec = specs.get(pool.launcher, {}).get("launcher")
        if spec is None:
            pools.append(pool)
            continue
        before = len(problems)
        launch = validate_table(pool.launch, spec.pool_options, file, f"pools.{pool.name}.launch", problems)
        if len(problems) == before:
            problems += missing_env(launch, pool.launch, spec.pool_options, context.environ, file, f"pools.{pool.name}.launch")
        pools.append(replace(pool, launch=launch))

    runtime = Runtime(tuple(pools))
    if problems or not instantiate:
        return runtime, problems

    for name, by_role in specs.items():
        built: dict[int, Any] = {}  # one object per factory, even when it plays several roles
        for role, spec in by_role.items():
            key = id(spec.factory)
            if key not in built:
                try:
                    built[key] = spec.factory(options[name], context)
                except Exception as exc:  # noqa: BLE001 - a plugin's failure is a one-line problem
                    problems.append(ConfigProblem(file, f"plugins.{name}", f"{role.replace('_', ' ')} failed to start: {exc}"))
                    continue
            obj = built[key]
            if role == "observer":
                if obj is not None:  # None: the observer is off
                    manager.pm.register(obj, name=f"observer:{name}:{id(obj)}")
                    runtime.observers[name] = obj
                continue
            missing = [m for m in METHODS[role] if not callable(getattr(obj, m, None))]
            if missing:
                problems.append(ConfigProblem(
                    file, f"plugins.{name}",
                    f"does not implement the {role.replace('_', ' ')} methods: {', '.join(missing)} missing",
                ))
                continue
            runtime.objects[role][name] = obj
    return runtime, problems


def check_plugins(runtime: Runtime, file: str, network: bool) -> list[ConfigProblem]:
    """Each built plugin's own ``check(pools, network)``: one problem per line it returns; a check that raises
    is one line too."""
    problems = []
    for _role, name, obj in runtime.each():
        check_fn = getattr(obj, "check", None)
        if not callable(check_fn):
            continue
        pools = [p for p in runtime.pools if name in (p.queue_source, p.device_provider, p.launcher)]
        try:
            lines = [str(line) for line in check_fn(pools, network) or ()]
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is its problem line, never a traceback
            lines = [f"check failed: {type(exc).__name__}: {exc}"]
        problems += [ConfigProblem(file, f"plugins.{name}", line) for line in lines]
    return problems
