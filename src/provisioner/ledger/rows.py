"""A launch as the ``launches`` table holds it: the columns read, and a row made a ``Launch``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from ..model import Launch, LaunchState
from .migrations import ADDED_COLUMNS, BASE_COLUMNS, NOT_READ

IN_FLIGHT = tuple(s.value for s in LaunchState if s.in_flight)
FIELDS = {f.name for f in fields(Launch)}
READ = (*BASE_COLUMNS, *(name for name, _ in ADDED_COLUMNS if name not in NOT_READ and name in FIELDS))
COLUMNS = ", ".join(READ)


def from_row(row: Sequence) -> Launch:
    values = dict(zip(READ, row))
    values["state"] = LaunchState(values["state"])
    return Launch(**values)
