"""Logging set-up: one human-readable line per event, or JSON for journald; secrets redacted everywhere.

Redaction happens on the final text a sink writes (message, traceback and JSON fields alike), so no path
around it exists: every value registered with ``add_secrets`` is replaced by ``***``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from loguru import logger

_secrets: list[str] = []

TEXT_FORMAT = "<green>{time:YYYY-MM-DD HH:mm:ss}</green> <level>{level: <7}</level> {message}"


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every secret (by default: every one registered) replaced by ``***``, longest first.

    The host registers the values of every variable a config names with an ``env=True`` option; a plugin passes
    what else it holds, e.g. ``redact(cli_output, [access_key])`` before it goes into a ``LaunchResult.detail``.
    """
    ordered = _secrets if secrets is None else sorted({s for s in secrets if s}, key=len, reverse=True)
    for secret in ordered:
        text = text.replace(secret, "***")
    return text


def add_secrets(values: Iterable[str]) -> None:
    """Values that must never appear in a log line (longest first, so a secret containing another goes whole)."""
    _secrets.extend(v for v in values if v and len(v) >= 4 and v not in _secrets)
    _secrets.sort(key=len, reverse=True)


def _redacting(stream: TextIO):
    def write(message: str) -> None:
        stream.write(redact(message))
        stream.flush()

    return write


def setup(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    logger.remove()
    stream = stream or sys.stderr
    sink = _redacting(stream)
    if fmt == "json":
        logger.add(sink, level=level.upper(), serialize=True, backtrace=False, diagnose=False)
    else:
        colour = hasattr(stream, "isatty") and stream.isatty()
        logger.add(sink, level=level.upper(), format=TEXT_FORMAT, colorize=colour, backtrace=False, diagnose=False)
