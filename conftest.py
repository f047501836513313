"""For every test in the tree: the caller's environment does not leak in.

A developer's shell may hold real Taskcluster or LambdaTest credentials, a plugin filter, or systemd's
variables; tests must behave the same with or without them (and never see real secrets).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property tests are deterministic: the same examples on every run and every machine.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")

LEAKY_PREFIXES = ("TASKCLUSTER_", "LT_", "TC_")
LEAKY_NAMES = ("PROVISIONER_PLUGINS", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(LEAKY_PREFIXES) or name in LEAKY_NAMES:
            monkeypatch.delenv(name)
