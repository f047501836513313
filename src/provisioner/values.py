"""What a single config value may be: names, numbers, variable names, non-secrets, a usable state directory.

Each ``*_problem`` function returns why a value is refused (one line, never the value itself when it may be a
secret), or None.

**Names.** Every name that becomes a job label, a file name or a command argument — ``job_tag``, pool names,
UDIDs (``udids``, ``udid``) — is 1 to 128 characters from ``[A-Za-z0-9._-]`` (``NAME_CHARS``), and does not
start with ``-`` or ``.``. Selector values (``model``, ``os_version``) are words of those same characters
separated by single spaces (real model names hold spaces: ``Galaxy A55 5G``); they reach a job only as an
escaped pattern. Commas, newlines, quotes, ``$``, ``;`` and other shell text are refused everywhere.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

NAME_CHARS = "A-Za-z0-9._-"
NAME_MAX = 128
_NAME = re.compile(rf"[A-Za-z0-9_][{NAME_CHARS}]{{0,{NAME_MAX - 1}}}")
_WORDS = re.compile(rf"[{NAME_CHARS}]+( [{NAME_CHARS}]+)*")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKENISH = re.compile(r"[A-Za-z0-9+/=_.~-]{16,}")
_SEPARATORS = re.compile(r"[-_.~/+=]+")
SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD", "PASSWD", "CREDENTIAL")
INT64 = (-(2**63), 2**63 - 1)
NAME_RULE = f"1 to {NAME_MAX} characters from [{NAME_CHARS}], not starting with '-' or '.'"


def show(value: Any, limit: int = 60) -> str:
    """A value for a one-line message: repr (so a newline shows as ``\\n``), cut short; hidden if secret-like."""
    if isinstance(value, str) and looks_like_secret(value):
        return "(value not shown: it looks like a secret)"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


def one_line(text: str) -> str:
    """``text`` with every control character escaped, so that a problem is always one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def name_problem(value: Any, what: str = "name") -> str | None:
    """Why ``value`` cannot be a name (a UDID, a pool, a label): see the rule above; None when it can.

    The host skips a phone or a job whose names fail it; a plugin may check with it first, e.g.
    ``name_problem(serial, "UDID")``."""
    if not isinstance(value, str):
        return f"a {what} must be a string, not {type(value).__name__} {show(value)}"
    if not _NAME.fullmatch(value):
        return f"{show(value)} is not a valid {what}: use {NAME_RULE}"
    return None


def words_problem(value: str, what: str) -> str | None:
    if value and (len(value) > NAME_MAX or not _WORDS.fullmatch(value)):
        return f"{show(value)} is not a valid {what}: use words of [{NAME_CHARS}] separated by single spaces"
    return None


def queue_problem(value: str) -> str | None:
    """Queue ids are the queue source's to judge; the host refuses only what can break a line or a label."""
    if not value:
        return "must not be empty"
    if len(value) > 256 or any(c.isspace() or not c.isprintable() or c in ",;'\"`$\\" for c in value):
        return f"{show(value)} is not a queue id: no spaces, commas, quotes or shell characters, at most 256"
    return None


def entropy(text: str) -> float:
    """Shannon entropy, in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values()) if text else 0.0


def looks_like_secret(value: str) -> bool:
    """A long run of mixed letters and digits with high entropy: an access key, a token, a password.

    Names made of short words (``gecko-t-lambda-perf-a55``, ``TASKCLUSTER_ACCESS_TOKEN``) are not."""
    if not _TOKENISH.fullmatch(value):
        return False
    if len(value) >= 20 and _classes(value) == 3 and entropy(value) >= 3.8:
        return True
    return any(len(s) >= 16 and _classes(s) >= 2 and entropy(s) >= 3.0 for s in _SEPARATORS.split(value))


def _classes(text: str) -> int:
    return sum(bool(re.search(p, text)) for p in ("[a-z]", "[A-Z]", "[0-9]"))


def variable_problem(value: Any) -> str | None:
    """Why ``value`` is not an environment variable's name. Never shows the value: it may be the secret."""
    if not isinstance(value, str) or not value:
        return "must name an environment variable (a string like LT_ACCESS_KEY)"
    if not _VARIABLE.fullmatch(value) or len(value) > 64 or looks_like_secret(value):
        return "looks like a secret, not a variable name: give the name of the variable that holds it"
    return None


def env_table_problems(table: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, reason) for each entry of a non-secret environment table that looks like a secret."""
    out = []
    for key, value in table.items():
        if any(word in str(key).upper() for word in SECRET_WORDS):
            out.append((key, "looks like a secret (by its name): secrets go in variables named by *_env keys"))
        elif not isinstance(value, (str, int, float, bool)):
            out.append((key, f"must be a string, not {type(value).__name__}"))
        elif isinstance(value, str) and looks_like_secret(value):
            out.append((key, "looks like a secret (value not shown): secrets go in variables named by *_env keys"))
    return out


def number_problem(value: int | float, low: float | None, high: float | None) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, not {value!r}"
    if low is None and high is None:
        low, high = INT64 if isinstance(value, int) else (-1e15, 1e15)
    if low is not None and value < low:
        return f"must be at least {_bound(low)}, not {value!r}" if low else f"must not be negative, not {value!r}"
    if high is not None and value > high:
        return f"must be at most {_bound(high)}, not {value!r}"
    return None


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) <= 2**63 else f"{x:g}"


def state_dir_problem(path: Path) -> str | None:
    """Create ``path`` (0700) if need be and write and remove a file in it; why that failed, or None."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.is_dir():
            return f"{show(str(path), 1000)} is not a directory"
        fd, name = tempfile.mkstemp(prefix=".write-test-", dir=path)
        try:
            os.write(fd, b"ok\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        return f"cannot write in {show(str(path), 1000)}: {exc.strerror or type(exc).__name__}"
    return None
