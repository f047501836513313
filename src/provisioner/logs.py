"""Logging set-up: one human-readable line per event, or JSON for journald; secrets redacted everywhere."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from loguru import logger

_secrets: list[str] = []

TEXT_FORMAT = "<green>{time:YYYY-MM-DD HH:mm:ss}</green> <level>{level: <7}</level> {message}"


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    for secret in secrets if secrets is not None else _secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _patch(record) -> None:
    if _secrets:
        record["message"] = redact(record["message"])


def add_secrets(values: Iterable[str]) -> None:
    """Values that must never appear in a log line (longest first, so a secret containing another goes whole)."""
    _secrets.extend(v for v in values if v and len(v) >= 4 and v not in _secrets)
    _secrets.sort(key=len, reverse=True)


def setup(level: str = "INFO", fmt: str = "text", stream=None) -> None:
    logger.remove()
    logger.configure(patcher=_patch)
    stream = stream or sys.stderr
    if fmt == "json":
        logger.add(stream, level=level.upper(), serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(stream, level=level.upper(), format=TEXT_FORMAT, colorize=None, backtrace=False, diagnose=False)
