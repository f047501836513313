"""Writes the small subset of TOML the composed configs need: tables of keys with scalar, array and inline
table values. (The standard library reads TOML but does not write it.)"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def dumps(doc: Mapping[str, Mapping[str, Any]]) -> str:
    """``{table: {key: value}}`` as TOML: one ``[table]`` each, nested tables written inline."""
    out = []
    for table, entries in doc.items():
        out.append(f"[{_key(table)}]")
        out += [f"{_key(k)} = {_value(v)}" for k, v in entries.items() if v is not None]
        out.append("")
    return "\n".join(out)


def _key(key: str) -> str:
    return json.dumps(str(key))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} as TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None) + "}"
    raise ValueError(f"cannot write {type(value).__name__} as TOML")
