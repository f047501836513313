"""Reads and validates config.toml.

Every problem becomes one ``ConfigProblem`` line: ``file: key.path: reason``. Validation collects all
problems instead of stopping at the first, so ``provisioner check`` shows them together.

Every number is finite and within its option's ``min``/``max`` (``SETTINGS``, ``POOL_KEYS``; plugins declare their
own). Every name that becomes a label, a path or an argument (``job_tag``, pool names, UDIDs) is 1 to 128
characters from ``[A-Za-z0-9._-]``, not starting with ``-`` or ``.``; selector values are words of those characters
separated by single spaces; ``values.py`` holds these rules and the secret heuristics. A value that looks like a
secret is never shown in a problem.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import Limits, Pool, Selector
from .types import Option
from .values import (
    env_table_problems, looks_like_secret, name_problem, number_problem, one_line, queue_problem, show, state_dir_problem,
    variable_problem, words_problem,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class ConfigProblem:
    """One problem of a config file: the file, the key path (``plugins.usbrack.adb``) and the reason, one line."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:  # always one line, whatever the file holds
        return one_line(f"{self.file}: {self.key}: {self.reason}" if self.key else f"{self.file}: {self.reason}")


class ConfigError(Exception):
    """A config that cannot be used: ``problems`` holds every problem found, one ``ConfigProblem`` each."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


@dataclass(frozen=True)
class Settings:
    """The ``[provisioner]`` table."""

    interval: float = 30.0
    max_launches_per_cycle: int = 60
    max_starting: int = 200
    max_startup_seconds: float = 900.0
    claim_seconds: float = 210.0
    adopt_clock_skew_seconds: float = 5.0
    launch_interval: float = 2.0
    launch_concurrency: int = 4
    state_dir: Path = Path("state")
    job_tag: str = "provisioner"
    failures_before_hold: int = 3
    retry_backoff_seconds: float = 60.0
    hold_seconds: float = 3600.0
    jobs_lookback_seconds: float = 2 * 3600.0
    retention_days: float = 35.0
    seed: int | None = None
    job_failures_before_hold: int = 3
    job_failure_window_seconds: float = 3 * 3600.0
    job_failure_hold_seconds: float = 2 * 3600.0
    job_failure_outcomes: tuple[str, ...] = ("failed", "lambda_error", "timeout")
    warm_window_seconds: float = 1800.0
    warm_safety_factor: float = 1.5
    ledger: str = "sqlite"
    ledger_url_env: str | None = None

    @property
    def limits(self) -> Limits:
        return Limits(self.max_launches_per_cycle, self.max_starting, self.max_startup_seconds)


DAY = 86400.0
_D = Settings()  # the defaults are the dataclass's; the options only describe them
_SECONDS = (int, float)
SETTINGS: dict[str, Option] = {
    "interval": Option(_SECONDS, _D.interval, "seconds between the starts of two cycles", min=1, max=DAY),
    "max_launches_per_cycle": Option(int, _D.max_launches_per_cycle, "launches planned in one cycle, all pools together", min=0, max=100_000),
    "max_starting": Option(int, _D.max_starting, "launches still starting, all pools together", min=0, max=100_000),
    "max_startup_seconds": Option(_SECONDS, _D.max_startup_seconds, "a launch whose worker has not claimed by then stops covering a pending task", min=1, max=DAY),
    "claim_seconds": Option(_SECONDS, _D.claim_seconds, "launch-to-claim time assumed until the ledger has learned each pool's own", min=1, max=DAY),
    "adopt_clock_skew_seconds": Option(_SECONDS, _D.adopt_clock_skew_seconds, "clock skew allowed when a job is matched to a launch by its creation time", min=0, max=300),
    "launch_interval": Option(_SECONDS, _D.launch_interval, "seconds between the starts of two submissions, whatever the concurrency (pacing)", min=0, max=3600),
    "launch_concurrency": Option(int, _D.launch_concurrency, "submissions running side by side", min=1, max=64),
    "state_dir": Option(str, str(_D.state_dir), "where the ledger and job directories live (relative to the config file)"),
    "job_tag": Option(str, _D.job_tag, "first label of every job; tells our jobs from others"),
    "failures_before_hold": Option(int, _D.failures_before_hold, "failed submissions in a row after which a phone is held back", min=1, max=1000),
    "retry_backoff_seconds": Option(_SECONDS, _D.retry_backoff_seconds, "wait before retrying a phone after a failed submission (doubles)", min=0, max=DAY),
    "hold_seconds": Option(_SECONDS, _D.hold_seconds, "how long a phone that keeps failing is held back", min=0, max=30 * DAY),
    "retention_days": Option(_SECONDS, _D.retention_days, "launches that left flight longer ago are folded into daily counts (report) and deleted", min=1, max=3650),
    "jobs_lookback_seconds": Option(_SECONDS, _D.jobs_lookback_seconds, "how far back the provider's job list is read (longer than a job lives)", min=60, max=30 * DAY),
    "seed": Option(int, _D.seed, "seed for picking phones (default: a new one each start)"),
    "job_failures_before_hold": Option(int, _D.job_failures_before_hold, "jobs failing in a row (within the window) after which a phone is held", min=1, max=1000),
    "job_failure_window_seconds": Option(_SECONDS, _D.job_failure_window_seconds, "only job failures this recent count", min=0, max=30 * DAY),
    "job_failure_hold_seconds": Option(_SECONDS, _D.job_failure_hold_seconds, "how long a phone whose jobs keep failing is held", min=0, max=30 * DAY),
    "job_failure_outcomes": Option(
        list, list(_D.job_failure_outcomes), "the provider's job outcomes that count as a failure of the phone"
    ),
    "warm_window_seconds": Option(_SECONDS, _D.warm_window_seconds, "a pool's task arrival rate (warm = \"auto\") is measured over this window", min=60, max=DAY),
    "warm_safety_factor": Option(_SECONDS, _D.warm_safety_factor, "warm = \"auto\": arrivals expected within one launch-to-claim time, times this", min=1, max=10),
    "ledger": Option(str, _D.ledger, "where launches are recorded: sqlite (under state_dir, one host) or postgresql "
                     "(shared by several hosts, one of them active)", ("sqlite", "postgresql")),
    "ledger_url_env": Option(str, None, "the environment variable holding the PostgreSQL connection string "
                             "(with ledger = \"postgresql\")", env=True),
}

POOL_KEYS: dict[str, Option] = {
    "queue": Option(str, None, "the queue source's id of the task queue"),
    "queue_source": Option(str, "taskcluster", "queue source plugin"),
    "device_provider": Option(str, "lambdatest", "device provider plugin"),
    "launcher": Option(str, "hyperexecute", "job launcher plugin"),
    "udids": Option(list, None, "phones by UDID"),
    "udid": Option(str, None, "a single phone by UDID"),
    "selector": Option(dict, None, "phones by model and OS version: {model = ..., os_version = ...}"),
    "targeting": Option(str, "pinned", "pinned: we pick the phone; selector: the cloud picks one the selector "
                        "matches; group: the cloud picks one of udids (the group's members)",
                        ("pinned", "selector", "group")),
    "priority": Option(int, 0, "higher gets shared phones first", min=-1_000_000, max=1_000_000),
    "disabled": Option(bool, False, "a disabled pool is observed but gets no launch"),
    "max_starting": Option(int, None, "cap on this pool's launches still starting", min=0, max=100_000),
    "launch": Option(dict, {}, "the launcher's own keys for this pool"),
    "warm": Option((int, str), 0, 'workers to keep started and waiting beyond the pending tasks, or "auto"', min=0, max=10_000),
    "warm_max": Option(int, None, "cap on the pool's warm workers (also caps \"auto\")", min=0, max=10_000),
    "idle_timeout": Option(int, None, "seconds a worker waits for a task before it exits (idleTimeoutSecs); "
                           "unset: the launcher's own default", min=1, max=7 * 86400),
}
ROLE_KEYS = {"queue_source": "queue_source", "device_provider": "device_provider", "launcher": "launcher"}


@dataclass
class Config:
    path: Path
    settings: Settings
    pools: tuple[Pool, ...]
    plugin_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # validated [plugins.<name>]
    raw: Mapping[str, Any] = field(default_factory=dict)

    def plugins_used(self) -> dict[str, set[str]]:
        """role -> plugin names that some pool uses."""
        used: dict[str, set[str]] = {role: set() for role in ROLE_KEYS}
        for pool in self.pools:
            used["queue_source"].add(pool.queue_source)
            used["device_provider"].add(pool.device_provider)
            used["launcher"].add(pool.launcher)
        return used


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "an array", dict: "a table"}
    if isinstance(t, tuple):
        return names[float] if set(t) == {int, float} else " or ".join(names.get(x, x.__name__) for x in t)
    return names.get(t, t.__name__)


def check_value(value: Any, option: Option) -> str | None:
    """Why ``value`` does not fit ``option``, or None. A variable name (``env``) is never shown: it may be a secret."""
    types = option.type if isinstance(option.type, tuple) else (option.type,)
    if option.env and isinstance(value, str):
        return variable_problem(value)
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        if option.env:
            return variable_problem(value)
        shown = show(value) if isinstance(value, bool) else f"{type(value).__name__} {show(value)}"
        return f"must be {_type_name(option.type)}, not {shown}"
    if option.choices and value not in option.choices:
        return f"must be one of {', '.join(map(repr, option.choices))}, not {show(value)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number_problem(value, option.min, option.max)
    return None


def key_path(prefix: str, key: Any) -> str:
    """``prefix.key``; a key that is not a bare TOML key is quoted (``pools."a b"``)."""
    if looks_like_secret(str(key)):
        part = "(a key that looks like a secret)"
    elif isinstance(key, str) and key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        part = key
    else:
        part = json.dumps(str(key))
    return f"{prefix}.{part}" if prefix else part


def validate_table(
    table: Any, options: Mapping[str, Option], file: str, prefix: str, problems: list[ConfigProblem],
    fill: bool = True,
) -> dict[str, Any]:
    """Check ``table`` against declared ``options``; return it with defaults filled (unless ``fill`` is off)."""
    if not isinstance(table, Mapping):
        problems.append(ConfigProblem(file, prefix, f"must be a table, not {type(table).__name__}"))
        return {}
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = key_path(prefix, key)
        option = options.get(key)
        if option is None:
            known = ", ".join(sorted(options)) or "none"
            problems.append(ConfigProblem(file, path, f"unknown key (known keys: {known})"))
            continue
        why = check_value(value, option)
        if why:
            problems.append(ConfigProblem(file, path, why))
            continue
        out[key] = float(value) if float in (option.type if isinstance(option.type, tuple) else ()) else value
    for key, option in options.items():
        if fill and key not in out and not any(p.key == key_path(prefix, key) for p in problems):
            if option.required:
                problems.append(ConfigProblem(file, key_path(prefix, key), "missing (required)"))
            else:
                out[key] = option.default
    return out


def validate_options(table: Any, options: Mapping[str, Option], file: str = "", prefix: str = "") -> dict[str, Any]:
    """``table`` checked against the declared ``options``, with defaults filled in; raises ``ConfigError`` with
    every problem (unknown keys, wrong types, numbers out of bounds, required keys missing). What the host does to
    a ``[plugins.<name>]`` table before the factory sees it; for a plugin's own commands and tests. Example::

        validate_options({"adb": "/usr/bin/adb"}, OPTIONS, "config.toml", "plugins.usbrack")
    """
    problems: list[ConfigProblem] = []
    out = validate_table(table, options, file, prefix, problems)
    if problems:
        raise ConfigError(problems)
    return out


def missing_env(
    table: Mapping[str, Any], given: Mapping[str, Any], options: Mapping[str, Option], environ: Mapping[str, str],
    file: str, prefix: str,
) -> list[ConfigProblem]:
    """Variables named by ``env`` options that are unset: a required option, or one the file sets explicitly."""
    problems = []
    for key, option in options.items():
        name = table.get(key)
        if option.env and name and (option.required or key in given) and not environ.get(name):
            problems.append(ConfigProblem(file, f"{prefix}.{key}", f"environment variable {name} is not set"))
    return problems


def load(path: str | Path) -> tuple[Config, list[ConfigProblem]]:
    """Parse and validate the host's part of the config (plugin tables are checked by ``plugins.build``)."""
    path = Path(path)
    file = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(file, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(file, "", f"cannot read: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "", f"not valid TOML: {exc}")]) from None

    problems: list[ConfigProblem] = []
    for key in raw:
        if key not in ("provisioner", "defaults", "pools", "plugins"):
            problems.append(ConfigProblem(file, key_path("", key), "unknown table (known: provisioner, defaults, pools, plugins)"))

    s = validate_table(raw.get("provisioner", {}), SETTINGS, file, "provisioner", problems)
    if isinstance(s.get("job_tag"), str) and (why := name_problem(s["job_tag"], "job tag")):
        problems.append(ConfigProblem(file, "provisioner.job_tag", why))
    if s.get("state_dir") == "" or "\0" in s.get("state_dir", ""):
        problems.append(ConfigProblem(file, "provisioner.state_dir", f"must be a directory's path, not {show(s.pop('state_dir'))}"))
    if isinstance(s.get("job_failure_outcomes"), list):
        if not all(isinstance(o, str) and o and not name_problem(o) for o in s["job_failure_outcomes"]):
            problems.append(ConfigProblem(file, "provisioner.job_failure_outcomes", "must be a list of outcome words"))
        s["job_failure_outcomes"] = tuple(map(str, s["job_failure_outcomes"]))
    if s.get("ledger") == "postgresql" and not s.get("ledger_url_env"):
        problems.append(ConfigProblem(file, "provisioner.ledger_url_env", 'missing (required with ledger = "postgresql")'))
    if "state_dir" in s:
        s["state_dir"] = (path.parent / s["state_dir"]).resolve()
    settings = Settings(**{k: v for k, v in s.items() if k in SETTINGS})

    default_options = {k: v for k, v in POOL_KEYS.items() if k not in ("queue", "udids", "udid", "selector")}
    defaults = validate_table(raw.get("defaults", {}), default_options, file, "defaults", problems, fill=False)

    pools = []
    raw_pools = raw.get("pools", {})
    if not isinstance(raw_pools, Mapping):
        problems.append(ConfigProblem(file, "pools", "must be a table of [pools.<name>] tables"))
        raw_pools = {}
    if not raw_pools:
        problems.append(ConfigProblem(file, "pools", "no pool is defined"))
    queues: dict[str, str] = {}
    for name, table in raw_pools.items():
        pool = _pool(name, table, defaults, file, problems)
        if pool is None:
            continue
        first = queues.setdefault(f"{pool.queue_source}:{pool.queue}", name)
        if first != name:  # each would launch for the whole pending count
            problems.append(ConfigProblem(file, f"pools.{name}.queue", f"queue {pool.queue} is already pool {first}'s"))
            continue
        pools.append(pool)

    plugin_tables = raw.get("plugins", {})
    if not isinstance(plugin_tables, Mapping):
        problems.append(ConfigProblem(file, "plugins", "must be a table of [plugins.<name>] tables"))
        plugin_tables = {}
    config = Config(path, settings, tuple(pools), dict(plugin_tables), raw)
    return config, problems


def ledger_problems(config: Config, environ: Mapping[str, str]) -> list[ConfigProblem]:
    """A PostgreSQL ledger needs its connection string's variable set, and psycopg installed."""
    s = config.settings
    if s.ledger != "postgresql" or not s.ledger_url_env:
        return []
    problems = []
    if not environ.get(s.ledger_url_env):
        problems.append(ConfigProblem(str(config.path), "provisioner.ledger_url_env",
                                      f"environment variable {s.ledger_url_env} is not set"))
    try:
        import psycopg  # noqa: F401
    except ImportError:
        problems.append(ConfigProblem(str(config.path), "provisioner.ledger",
                                      "postgresql needs psycopg 3: pip install 'provisioner[postgresql]'"))
    return problems


def state_problems(config: Config) -> list[ConfigProblem]:
    """The state directory: created (0700) and test-written, so that an unusable one is one line, not a traceback."""
    why = state_dir_problem(config.settings.state_dir)
    return [ConfigProblem(str(config.path), "provisioner.state_dir", why)] if why else []


def _pool(name: str, table: Any, defaults: Mapping[str, Any], file: str, problems: list[ConfigProblem]) -> Pool | None:
    prefix = key_path("pools", name)
    before = len(problems)
    if why := name_problem(name, "pool name"):
        problems.append(ConfigProblem(file, prefix, why))
    if not isinstance(table, Mapping):
        problems.append(ConfigProblem(file, prefix, f"must be a table, not {type(table).__name__}"))
        return None
    given = validate_table(table, POOL_KEYS, file, prefix, problems, fill=False)
    p = {k: o.default for k, o in POOL_KEYS.items()} | dict(defaults) | given
    p["launch"] = {**defaults.get("launch", {}), **given.get("launch", {})}
    if "queue" not in table:
        problems.append(ConfigProblem(file, f"{prefix}.queue", "missing (required)"))
    elif isinstance(given.get("queue"), str) and (why := queue_problem(given["queue"])):
        problems.append(ConfigProblem(file, f"{prefix}.queue", why))
    udids = _udids(p, table, file, prefix, problems)
    selector = _selector(p, file, prefix, problems)
    if udids and selector:
        problems.append(ConfigProblem(file, prefix, "names phones both by udids and by selector: choose one"))
    if not udids and selector is None and "udids" not in table:
        problems.append(ConfigProblem(file, prefix, "names no phones: give udids, udid or selector"))
    if p.get("targeting") == "selector" and selector is None:
        problems.append(ConfigProblem(file, f"{prefix}.targeting", "'selector' targeting needs a selector"))
    if p.get("targeting") == "group" and selector is not None and not udids:
        problems.append(ConfigProblem(file, f"{prefix}.targeting",
                                      "'group' targeting needs udids (the group's members), not a selector"))
    if isinstance(p.get("warm"), str) and p["warm"] != "auto":
        problems.append(ConfigProblem(file, f"{prefix}.warm", f'must be a number of workers or "auto", not {show(p["warm"])}'))
    env = p["launch"].get("env")
    if isinstance(env, Mapping):  # the worker's non-secret environment, whatever the launcher
        for key, why in env_table_problems(dict(env)):
            problems.append(ConfigProblem(file, key_path(f"{prefix}.launch.env", key), why))
    if len(problems) > before:
        return None
    return Pool(
        name=name, queue=p["queue"], queue_source=p["queue_source"], device_provider=p["device_provider"],
        launcher=p["launcher"], udids=tuple(udids), selector=selector, targeting=p["targeting"],
        priority=p["priority"], enabled=not p["disabled"], max_starting=p["max_starting"], launch=dict(p["launch"]),
        warm=p["warm"], warm_max=p["warm_max"], idle_timeout=p["idle_timeout"],
    )


def _udids(p: Mapping[str, Any], table: Mapping[str, Any], file: str, prefix: str, problems: list[ConfigProblem]) -> list[str]:
    udids: list[str] = []
    if p.get("udid") is not None:
        if why := name_problem(p["udid"], "UDID"):
            problems.append(ConfigProblem(file, f"{prefix}.udid", why))
        else:
            udids.append(p["udid"])
    if isinstance(p.get("udids"), list):
        if not p["udids"] and "udids" in table:
            problems.append(ConfigProblem(file, f"{prefix}.udids", "is empty: name at least one phone (or disable the pool)"))
        for i, u in enumerate(p["udids"]):
            if why := name_problem(u, "UDID"):
                problems.append(ConfigProblem(file, f"{prefix}.udids[{i}]", why))
            elif u in udids:
                problems.append(ConfigProblem(file, f"{prefix}.udids[{i}]", f"phone {u} is listed twice in this pool"))
            else:
                udids.append(u)
    return udids


def _selector(p: Mapping[str, Any], file: str, prefix: str, problems: list[ConfigProblem]) -> Selector | None:
    if p.get("selector") is None:
        return None
    sel = validate_table(
        p["selector"], {"model": Option(str, ""), "os_version": Option((str, int), "", min=0, max=10_000)}, file,
        f"{prefix}.selector", problems,
    )
    selector = Selector(sel.get("model", ""), str(sel.get("os_version", "")))
    for key, value in (("model", selector.model), ("os_version", selector.os_version)):
        if why := words_problem(value, f"selector {key}"):
            problems.append(ConfigProblem(file, f"{prefix}.selector.{key}", why))
    if not selector.model and not selector.os_version:
        problems.append(ConfigProblem(file, f"{prefix}.selector", "names neither model nor os_version"))
    return selector
