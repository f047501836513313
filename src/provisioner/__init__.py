"""provisioner: keeps a fleet of real phones in a device cloud busy with CI tasks."""

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
from .types import Option, PluginContext, RemoteError, RoleSpec

__version__ = "0.1.0"

__all__ = [
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
    "RemoteError",
    "RemoteJob",
    "RoleSpec",
    "Selector",
    "Worker",
    "hookimpl",
    "redact",
]
