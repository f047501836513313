"""Calling the observer plugins' event hooks (``provisioner_cycle``, ``provisioner_launch_*``).

Owns nothing but the hook relay; every room that reports an event shares one ``Hooks``.
"""

from __future__ import annotations

from typing import Any

from loguru import logger


class Hooks:
    """Calls observer hooks; an observer that raises is logged, never fatal."""

    def __init__(self, hook: Any) -> None:
        self._hook = hook

    def __call__(self, name: str, **kwargs: Any) -> None:
        if self._hook is None:
            return
        try:
            getattr(self._hook, name)(**kwargs)
        except Exception as exc:  # noqa: BLE001
            logger.warning("an observer plugin failed in {}: {}: {}", name, type(exc).__name__, exc)
