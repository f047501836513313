"""Finds, loads and looks up plugins.

Built-in plugins are always registered. Third-party plugins come from the entry point group
``provisioner``; each is loaded in its own ``try``, so one broken plugin is reported and skipped, never fatal.
``PROVISIONER_PLUGINS`` controls which third-party plugins load: unset loads all, ``none`` (or empty)
loads none, ``a,b`` loads only the entry points named ``a`` and ``b``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy
from loguru import logger

from . import hookspecs
from .types import RoleSpec

ENV_VAR = "PROVISIONER_PLUGINS"
BUILTINS = ("provisioner.sim.plugin", "provisioner.metrics.plugin")
ROLES = {
    "queue_source": "provisioner_queue_sources",
    "device_provider": "provisioner_device_providers",
    "launcher": "provisioner_job_launchers",
    "observer": "provisioner_observers",  # observers with options of their own; not named by pools
}


EVENT_HOOKS_ROLE = "events"  # implements event hooks (an observer without options)
_warned: set[tuple[str, str]] = set()  # (plugin, error) already reported by this process


def error_text(exc: BaseException) -> str:
    """The whole error on one line (pluggy's validation errors span several)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginError(Exception):
    """A plugin problem that makes a lookup impossible (one line, names the plugins involved)."""


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin, for ``provisioner plugins``."""

    name: str
    distribution: str
    version: str
    roles: dict[str, list[str]] = field(default_factory=dict)  # role -> names offered
    hooks: list[str] = field(default_factory=list)
    error: str = ""
    builtin: bool = False

    @property
    def kinds(self) -> list[str]:
        """The roles its hooks declare (known even when it is broken and offers nothing)."""
        kinds = [role for role, hook in ROLES.items() if hook in self.hooks]
        extras = {"provisioner_commands": "commands", "provisioner_config_importers": "importers"}
        if any(h not in ROLES.values() and h not in extras for h in self.hooks) and "observer" not in kinds:
            kinds.append(EVENT_HOOKS_ROLE)
        kinds.extend(kind for hook, kind in extras.items() if hook in self.hooks)
        return kinds


@dataclass(frozen=True)
class _Offer:
    spec: RoleSpec
    plugin: str
    distribution: str


class PluginManager:
    def __init__(self, entry_points_: Iterable[EntryPoint] | None = None, only: str | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs.ProvisionerSpecs)
        self.infos: list[PluginInfo] = []
        self._offers: dict[str, dict[str, list[_Offer]]] = {role: {} for role in ROLES}
        self._load(entry_points_, only)
        self.warn_broken()

    def warn_broken(self) -> None:
        """One log line per broken plugin, once per process (however many managers a command builds)."""
        for info in self.infos:
            if info.error and (info.name, info.error) not in _warned:
                _warned.add((info.name, info.error))
                logger.warning("plugin {} ({}) is broken and is skipped: {}", info.name, info.distribution, info.error)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    # -- loading -----------------------------------------------------------------------------------
    def _load(self, eps: Iterable[EntryPoint] | None, only: str | None) -> None:
        from . import __version__

        for module_name in BUILTINS:
            info = PluginInfo(module_name.split(".")[-2], "provisioner", __version__, builtin=True)
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # noqa: BLE001 - even a broken built-in leaves the CLI working
                info.error = error_text(exc)
                self.infos.append(info)
                continue
            self._register(module, info)
        if eps is None:
            eps = entry_points(group=hookspecs.PROJECT)
        wanted = None if only is None else {n.strip() for n in only.split(",") if n.strip() and n.strip() != "none"}
        for ep in sorted(eps, key=lambda e: e.name):
            if wanted is not None and ep.name not in wanted:
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, dist.name if dist else "?", dist.version if dist else "?")
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import failure is reported, never fatal
                info.error = error_text(exc)
                self.infos.append(info)
                continue
            self._register(plugin, info)

    def register(self, plugin: ModuleType | object, name: str, distribution: str = "local", version: str = "0") -> PluginInfo:
        """Register a plugin object by hand (tests, embedding); a broken one is reported like an entry point."""
        info = PluginInfo(name, distribution, version)
        self._register(plugin, info)
        self.warn_broken()
        return info

    def _register(self, plugin: ModuleType | object, info: PluginInfo) -> None:
        info.hooks = self._hook_names(plugin)
        try:
            self.pm.register(plugin, name=f"{info.distribution}:{info.name}")
            for role, hook_name in ROLES.items():
                caller = getattr(self.pm.hook, hook_name)
                impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
                for impl in impls:
                    specs = list(impl.function() or ())
                    for spec in specs:
                        if not isinstance(spec, RoleSpec):
                            raise TypeError(f"{hook_name} returned {type(spec).__name__}, not RoleSpec")
                        self._offers[role].setdefault(spec.name, []).append(_Offer(spec, info.name, info.distribution))
                        info.roles.setdefault(role, []).append(spec.name)
        except Exception as exc:  # noqa: BLE001
            info.error = error_text(exc)
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            for offers in self._offers.values():
                for name in list(offers):
                    offers[name] = [o for o in offers[name] if o.plugin != info.name]
                    if not offers[name]:
                        del offers[name]
            info.roles = {}
        self.infos.append(info)

    def _hook_names(self, plugin: ModuleType | object) -> list[str]:
        """The hooks ``plugin`` implements, read without registering it (so a plugin pluggy refuses has them too)."""
        names = []
        for attr in dir(plugin):
            try:
                if self.pm.parse_hookimpl_opts(plugin, attr) is not None:
                    names.append(attr)
            except Exception:  # noqa: BLE001,S112 - an attribute that cannot be read is no hook
                continue
        return sorted(names)

    # -- lookup ------------------------------------------------------------------------------------
    def names(self, role: str) -> list[str]:
        return sorted(self._offers[role])

    def spec(self, role: str, name: str) -> RoleSpec:
        offers = self._offers[role].get(name)
        if not offers:
            known = ", ".join(self.names(role)) or "none installed"
            raise PluginError(f"unknown {role.replace('_', ' ')} {name!r} (known: {known})")
        if len(offers) > 1:
            both = " and ".join(f"{o.distribution} ({o.plugin})" for o in offers)
            raise PluginError(f"{role.replace('_', ' ')} {name!r} is offered by both {both}: uninstall one")
        return offers[0].spec

    def all_specs(self) -> Mapping[str, Mapping[str, list[_Offer]]]:
        return self._offers

    def conflicts(self) -> list[tuple[str, str, list[str]]]:
        """(role, name, plugins) for each name offered by more than one plugin."""
        return [
            (role, name, [o.plugin for o in offers])
            for role in ROLES for name, offers in sorted(self._offers[role].items()) if len(offers) > 1
        ]


def plugin_manager(only: str | None = None, environ: Mapping[str, str] | None = None) -> PluginManager:
    """The plugin manager for this process, honouring ``PROVISIONER_PLUGINS``."""
    import os

    env = os.environ if environ is None else environ
    return PluginManager(only=only if only is not None else env.get(ENV_VAR))
