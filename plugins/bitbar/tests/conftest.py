"""Fixtures of the Bitbar plugin's tests: answers from cassettes (``bb_shapes.py`` builds them), a virtual clock at
the cassettes' time, fake credentials, every log line captured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from provisioner import PluginContext
from provisioner_bitbar import states

from bb_shapes import CASSETTES
from bb_support import bb_context, launch_body, mask_token


def pytest_recording_configure(config: Any, vcr: Any) -> None:
    vcr.register_matcher("launch_body", launch_body)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {"filter_headers": ["authorization"], "before_record_request": mask_token,
            "match_on": ["method", "scheme", "host", "port", "path", "query", "launch_body"]}


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTES)


@pytest.fixture
def context(tmp_path: Path) -> PluginContext:
    return bb_context(tmp_path)


@pytest.fixture
def logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="TRACE", format="{level} {message} {extra}")
    yield lines
    logger.remove(sink)


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    states._seen.clear()
