"""The metrics observer's registration: its options and its factory (which binds nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loguru import logger

from ..hookspecs import hookimpl
from ..types import Option, PluginContext, RoleSpec

OPTIONS = {
    "port": Option(int, None, "TCP port of the /metrics endpoint; unset: no metrics"),
    "address": Option(str, "127.0.0.1", "address to listen on (0.0.0.0 or :: for every interface)"),
}


def make_observer(options: Mapping[str, Any], context: PluginContext) -> Any:
    """The observer, or None when metrics are off (no port) or prometheus_client is missing."""
    port = options.get("port")
    if port is None:
        return None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is not a TCP port (0-65535)")
    try:
        from .observer import MetricsObserver
    except ImportError as exc:
        logger.warning("metrics are off: {} (install it with: pip install 'provisioner[metrics]')", exc)
        return None
    return MetricsObserver(options.get("address") or "127.0.0.1", port)


@hookimpl
def provisioner_observers():
    yield RoleSpec(
        name="metrics", factory=make_observer, options=OPTIONS,
        description="Prometheus metrics on an HTTP endpoint: per-pool gauges, launch counters, cycle histograms",
    )
