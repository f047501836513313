"""Fixtures for the taskcluster plugin's tests: cassettes, a virtual clock, sources, a stub adapter, log capture."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from loguru import logger

from provisioner import PluginContext
from provisioner.clock import VirtualClock
from provisioner_taskcluster.settings import Settings
from provisioner_taskcluster.source import TaskclusterQueues
from tc_helpers import CASSETTES, START, StubAdapter

Handler = Callable[[requests.PreparedRequest], requests.Response]
CREDENTIAL_VARIABLES = ("TASKCLUSTER_CLIENT_ID", "TASKCLUSTER_ACCESS_TOKEN")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tc_recordable: a taskcluster cassette that can be re-recorded against Firefox-CI (see README)"
    )


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    # Hawk's Authorization header never reaches a cassette; the batch POST is told apart by its body.
    return {"filter_headers": ["authorization"], "match_on": ["method", "uri", "body"]}


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture
def recording(record_mode: str | None) -> bool:
    """True when the run records (``--record-mode`` once/rewrite/...) instead of replaying."""
    return record_mode not in (None, "none")


@pytest.fixture
def live_environ(recording: bool) -> dict[str, str]:
    """Replaying: no variables (anonymous, Firefox-CI). Recording: the real credentials, if exported."""
    if not recording:
        return {}
    return {name: os.environ[name] for name in CREDENTIAL_VARIABLES if os.environ.get(name)}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def make_source(clock: VirtualClock, tmp_path: Path) -> Iterator[Callable[..., TaskclusterQueues]]:
    """``make_source(environ=None, session=None, **options)`` -> a TaskclusterQueues on the virtual clock."""
    made: list[TaskclusterQueues] = []

    def make(environ: dict[str, str] | None = None, session: requests.Session | None = None,
             **options: Any) -> TaskclusterQueues:
        context = PluginContext(clock=clock, state_dir=tmp_path, environ=environ or {}, seed=7)
        source = TaskclusterQueues(Settings.resolve(options, context.environ), context, session=session)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


@pytest.fixture
def tc_log() -> Iterator[list[str]]:
    """Every loguru line at every level, as ``LEVEL message``."""
    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(str(m).rstrip("\n")), level="TRACE", format="{level} {message}")
    yield lines
    logger.remove(handler)


@pytest.fixture
def stub_session() -> Callable[[Handler], tuple[requests.Session, StubAdapter]]:
    """``stub_session(handler)`` -> a Session whose every request goes to ``handler``, and the adapter."""

    def make(handler: Handler) -> tuple[requests.Session, StubAdapter]:
        session = requests.Session()
        adapter = StubAdapter(handler)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session, adapter

    return make
