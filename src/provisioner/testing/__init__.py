"""The test kit for plugins: a virtual clock, a context factory and contract suites for the three roles.

Installed with the host, and a pytest plugin (entry point ``provisioner.testing`` in the ``pytest11`` group, or
``pytest_plugins = ["provisioner.testing"]`` in a top-level conftest), which adds two fixtures:
``provisioner_clock`` (a ``VirtualClock``) and ``provisioner_context`` (``make_context(tmp_path)``). The clock's
``step(seconds)`` moves its wall time alone (``now()``, not ``monotonic()``): a plugin's test can check that a
step of the host's clock ends or stretches none of its deadlines, intervals or backoffs.

A plugin's tests subclass the suites::

    from provisioner.testing import DeviceProviderContract

    class TestUsbRackProvider(DeviceProviderContract):
        def make_provider(self, context):
            return UsbRack({"adb": str(FAKE_ADB)}, context)

Each suite's docstring says what it checks and which methods a subclass defines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..clock import VirtualClock
from ..types import PluginContext
from .context import START, make_context
from .contracts import DeviceProviderContract, JobLauncherContract, QueueSourceContract

@pytest.fixture
def provisioner_clock() -> VirtualClock:
    """A virtual clock at ``START``."""
    return VirtualClock(START)


@pytest.fixture
def provisioner_context(tmp_path: Path, provisioner_clock: VirtualClock) -> PluginContext:
    """``make_context(tmp_path, clock=provisioner_clock)``."""
    return make_context(tmp_path, clock=provisioner_clock)


__all__ = [
    "START",
    "DeviceProviderContract",
    "JobLauncherContract",
    "QueueSourceContract",
    "VirtualClock",
    "make_context",
    "provisioner_clock",
    "provisioner_context",
]
