"""``make_context``: the context a plugin's factory gets, built for a test."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..clock import VirtualClock
from ..types import PluginContext

START = 1_750_000_000.0  # where a test's virtual clock starts, unless told otherwise


def make_context(
    tmp_path: Path, environ: Mapping[str, str] | None = None, clock: Any = None, config_dir: Path | None = None,
    **fields: Any,
) -> PluginContext:
    """A context as the daemon builds it, for a test: a ``VirtualClock`` (unless ``clock``), ``state_dir`` made
    (0700) under ``tmp_path``, an environment of its own (empty unless ``environ``: never the caller's), and the
    config's directory ``config_dir`` (default ``tmp_path``). Other ``PluginContext`` fields by keyword
    (``job_tag``, ``seed``, ``dry_run``)."""
    state = Path(tmp_path) / "state"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    return PluginContext(
        clock=clock if clock is not None else VirtualClock(START), state_dir=state, environ=dict(environ or {}),
        config_dir=Path(config_dir) if config_dir is not None else Path(tmp_path), **fields,
    )
