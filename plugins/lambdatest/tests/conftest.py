"""Fixtures of the LambdaTest plugin's tests: offline HTTP from cassettes, a virtual clock, fake credentials,
loguru captured at TRACE, and a fake ``hyperexecute`` CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from provisioner import PluginContext
from provisioner.clock import VirtualClock
from provisioner_lambdatest import devices

from lt_support import ENVIRON, NOW, REPO, FakeCli


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {"filter_headers": ["authorization"], "decode_compressed_response": True}


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(REPO / "cassettes" / "lambdatest")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


@pytest.fixture
def context(tmp_path: Path, clock: VirtualClock) -> PluginContext:
    return PluginContext(clock=clock, state_dir=tmp_path / "state", environ=dict(ENVIRON), job_tag="tcdp")


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every log line at every level, formatted with its extra fields."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="TRACE", format="{level} {message} {extra}")
    yield lines
    logger.remove(sink)


@pytest.fixture(autouse=True)
def _fresh_unknown_states() -> None:
    devices._unknown_seen.clear()


@pytest.fixture
def fake_cli(tmp_path: Path, context: PluginContext) -> FakeCli:
    return FakeCli(tmp_path / "bin", context.state_dir / "hyperexecute-cli.lock")


@pytest.fixture(autouse=True)
def _pinned(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped checksums.sha256 pins nothing yet, so launches are refused: tests of anything else launch as if
    it pinned the worker (``@pytest.mark.unpinned`` tests keep the refusal)."""
    if "unpinned" not in request.keywords:
        from provisioner_lambdatest import launcher

        monkeypatch.setattr(launcher, "unpinned", lambda payload, version: "")
