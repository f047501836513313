"""What a UDID may look like before it reaches the host, a yaml or a command line."""

from __future__ import annotations

import re

# 1..128 characters of [A-Za-z0-9._-], not starting with '-' (an option) or '.' (a hidden or relative path).
UDID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def valid_udid(value: object) -> bool:
    return isinstance(value, str) and UDID.fullmatch(value) is not None
