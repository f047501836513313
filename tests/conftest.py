from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from loguru import logger


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config file from a TOML string; return its path."""

    def write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def log_lines():
    """Every log line at every level, as text."""
    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(str(m)), level="TRACE", format="{level} {message}")
    yield lines
    logger.remove(handler)
