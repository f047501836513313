"""provisioner: keeps a fleet of real phones in a device cloud busy with CI tasks.

This package's top level is the public API for plugins: everything a queue source, device provider, job launcher
or observer needs is importable from ``provisioner`` (see ``__all__``); the submodules are the host's and may
change. ``provisioner.testing`` holds the test kit (a virtual clock, a context factory, contract suites).
See docs/writing-a-plugin.md.
"""

from .clock import Clock, SystemClock, VirtualClock, monotonic
from .config import ConfigError, ConfigProblem, validate_options
from .hookspecs import hookimpl
from .logs import redact
from .model import (
    JobState,
    Launch,
    LaunchRequest,
    LaunchResult,
    LaunchState,
    Phone,
    PhoneState,
    Pool,
    QueueCounts,
    RemoteJob,
    Selector,
    Worker,
)
from .types import (
    ConfigImporter,
    DeviceProvider,
    ImportResult,
    JobLauncher,
    Option,
    PluginContext,
    QueueSource,
    RemoteError,
    RoleSpec,
)
from .values import name_problem

__version__ = "0.1.0"

# imported on first use: .httpdeadline loads requests; .runtime the plugin manager and the loader
_LAZY = {
    **dict.fromkeys(("BodyTooLarge", "DeadlineAdapter", "deadline", "deadline_left", "is_loopback", "read_capped",
                     "redirect_target"), ".httpdeadline"),
    "plugin_options": ".runtime",
}


def __getattr__(name: str):  # noqa: ANN202 - PEP 562
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'provisioner' has no attribute {name!r}")


__all__ = [
    "BodyTooLarge",
    "Clock",
    "ConfigImporter",
    "ConfigError",
    "ConfigProblem",
    "DeadlineAdapter",
    "DeviceProvider",
    "ImportResult",
    "JobLauncher",
    "JobState",
    "Launch",
    "LaunchRequest",
    "LaunchResult",
    "LaunchState",
    "Option",
    "Phone",
    "PhoneState",
    "PluginContext",
    "Pool",
    "QueueCounts",
    "QueueSource",
    "RemoteError",
    "RemoteJob",
    "RoleSpec",
    "Selector",
    "SystemClock",
    "VirtualClock",
    "Worker",
    "deadline",
    "deadline_left",
    "hookimpl",
    "is_loopback",
    "monotonic",
    "name_problem",
    "plugin_options",
    "read_capped",
    "redact",
    "redirect_target",
    "validate_options",
]
