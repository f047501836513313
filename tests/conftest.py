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


class LogLines(list):
    """Every log line at every level, as text: ``LEVEL message``."""

    def messages(self, level: str = "TRACE") -> list[str]:
        """The messages (without their level, nor the line's end) logged at ``level`` or above."""
        least = logger.level(level).no
        return [m.removesuffix("\n") for name, _, m in (line.partition(" ") for line in self)
                if logger.level(name).no >= least]


@pytest.fixture
def log_lines():
    """Every log line at every level, as text (``LEVEL message``); ``messages(level)`` the messages at a level
    or above."""
    lines = LogLines()
    handler = logger.add(lambda m: lines.append(str(m)), level="TRACE", format="{level} {message}")
    yield lines
    logger.remove(handler)


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server for the whole session (see pgserver.py): skipped without the server
    programs, unless PROVISIONER_REQUIRE_POSTGRES=1 (then it fails)."""
    from pgserver import Server, available

    available()
    server = Server()
    yield server
    server.close()


class Backend:
    """One ledger backend for a test: ``open()`` gives a Ledger on it (the same database each time)."""

    def __init__(self, name: str, tmp_path: Path, url: str = "") -> None:
        self.name, self.tmp_path, self.url = name, tmp_path, url

    def dialect(self):
        from provisioner.ledger import PostgreSQL, SQLite

        return SQLite(self.tmp_path / "ledger.sqlite3") if self.name == "sqlite" else PostgreSQL(self.url)

    def open(self, **kwargs):
        from provisioner.ledger import Ledger

        return Ledger(self.dialect(), **kwargs)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path: Path) -> Backend:
    """Each ledger backend in turn: SQLite in the test's directory, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path)
    return Backend("postgresql", tmp_path, request.getfixturevalue("pg_server").database())
