"""``provisioner status``: one snapshot of every pool. Reads the remote services once and the ledger; starts nothing.

Also home of the small helpers the operator's commands share (durations, tables, opening the ledger).
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..clock import Clock
from ..config import Config, Settings
from ..idle_outs import idle_outs_ended_since
from ..ledger import Ledger, select
from ..logs import redact, setup
from ..values import one_line
from ..loop import Provisioner
from ..model import LaunchState
from ..planner import plan
from ..plugins import Runtime
from ..runtime import Loaded, load_all
from .common import config_option, fail

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``2h``, ``1h30m``, ``7d`` or ``2w``."""
    text = text.strip().lower()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (examples: 90s, 15m, 2h, 1h30m, 7d)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def span(seconds: float) -> str:
    """A short human duration: ``45s``, ``12m``, ``3h05m``, ``2d04h``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def render(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A plain text table: columns padded to their widest cell, the last one left ragged."""
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]


def open_ledger(settings: Settings, create: bool = False) -> Ledger | None:
    """The daemon's ledger (SQLite under the state directory, or PostgreSQL from any host): for writing with
    ``create`` (made if need be), else read-only, or None when it does not exist yet. One line if it cannot be
    opened."""
    try:
        return select.open_ledger(settings, readonly=not create)
    except Exception as exc:  # noqa: BLE001 - OSError, or the driver's error: one line, redacted
        fail([redact(f"cannot open the ledger ({settings.ledger}): {one_line(str(exc))}")])


@contextmanager
def loaded_with_ledger(config_path: Path) -> Iterator[tuple[Loaded, Ledger | None]]:
    """The config's plugins (built for a dry run) and the ledger if there is one; both closed after."""
    setup("ERROR")
    loaded, problems = load_all(config_path, dry_run=True)
    if loaded is None or problems:
        fail(problems)
    assert loaded is not None
    ledger = open_ledger(loaded.config.settings)
    try:
        yield loaded, ledger
    finally:
        loaded.runtime.close()
        if ledger is not None:
            ledger.close()


def emit(data: dict[str, Any], as_json: bool, printer: Callable[[dict[str, Any]], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        printer(data)


def snapshot(config: Config, runtime: Runtime, ledger: Ledger | None, clock: Clock) -> dict[str, Any]:
    """What every pool looks like now, and what the next cycle would do. Writes nothing, starts nothing."""
    p = Provisioner(config, runtime, ledger, clock, dry_run=True, inline=True)
    now, mono = clock.now(), p.monotonic()
    obs, unknown, _ = p.observation(now, mono)  # what a cycle plans from; a dry run: reads the ledger, writes nothing
    holds = p.holds(now, mono)  # the same phones as obs.held, with why (until: wall times, for people)
    the_plan = plan(tuple(p.pools.values()), obs, config.settings.limits, mono, seed=p.seed)

    recent = ledger.since(now - 3600) if ledger is not None else []
    made = Counter(launch.pool for launch in recent if launch.state not in (LaunchState.QUEUED, LaunchState.CANCELLED))
    failed = Counter(launch.pool for launch in recent if launch.state is LaunchState.FAILED)
    last_failures = ledger.last_failures(now - 86400.0) if ledger is not None else {}
    idle_outs = idle_outs_ended_since(ledger, now - 3600) if ledger is not None else {}
    pools = []
    for d in the_plan.decisions:
        last = last_failures.get(d.pool)
        pools.append({  # the planner's unknown is null (shown "?"), never 0
            "pool": d.pool, "pending": d.pending, "claimed": d.claimed, "idle": d.idle, "busy": d.busy,
            "starting": d.starting, "quarantined": d.quarantined, "held": d.held,
            "launches_last_hour": made[d.pool], "failed_last_hour": failed[d.pool],
            "warm": d.warm, "warm_target": d.warm_target, "idle_outs_last_hour": idle_outs.get(d.pool, 0),
            "last_failure": None if last is None else {
                "at": last.updated_at, "udid": last.udid, "detail": (last.detail.strip().splitlines() or [""])[-1][:300],
            },
            "next_cycle": {"launches": d.launches, "reason": d.reason},
        })
    owners: dict[str, list[str]] = {}
    for provider, phones in obs.phones.items():
        for pool in p.pools.values():
            if pool.device_provider == provider and phones is not None:
                for phone in phones:
                    if phone.udid in holds and pool.owns(phone):
                        owners.setdefault(phone.udid, []).append(pool.name)
    held = [
        {"udid": udid, "until": until, "reason": reason, "pools": owners.get(udid, [])}
        for udid, (until, reason) in sorted(holds.items(), key=lambda kv: kv[1][0])
    ]
    return {"at": now, "pools": pools, "held": held, "unknown": unknown, "ledger": bool(ledger),
            "foreign_jobs": p.strangers, "role": role(config.settings, ledger)}


def role(settings: Settings, ledger: Ledger | None) -> dict[str, Any] | None:
    """Which daemon plans and launches, with PostgreSQL: the lease's holder (None with SQLite: this host's)."""
    if settings.ledger == "sqlite":
        return None
    lead = ledger.leader(settings.job_tag) if ledger is not None else None
    if lead is None:
        return {"active": False, "line": "standby (no daemon has led this job tag yet)"}
    epoch, holder, since = lead
    host, _, pid = holder.partition(":")
    here = host == socket.gethostname()
    line = (f"active (this host, pid {pid}, epoch {epoch}, since {stamp(since)})" if here else
            f"standby (active: host {host} since {stamp(since)}, epoch {epoch})")
    return {"active": here, "holder": holder, "epoch": epoch, "since": since, "line": line}


def print_snapshot(snap: dict[str, Any]) -> None:
    now = snap["at"]
    rows = []
    for r in snap["pools"]:
        last = r["last_failure"]
        rows.append((
            *(r[k] if r[k] is not None else "?" for k in ("pool", "pending", "claimed", "idle", "busy", "starting",
                                                           "quarantined", "held")),
            f"{r['launches_last_hour']} ({r['failed_last_hour']} failed)" if r["failed_last_hour"] else r["launches_last_hour"],
            f"{'?' if r['warm'] is None else r['warm']} of {r['warm_target']}", r["idle_outs_last_hour"],
            f"{span(now - last['at'])} ago on {last['udid'] or '-'}: {last['detail'][:70]}" if last else "-",
        ))
    header = ("POOL", "PENDING", "CLAIMED", "IDLE", "BUSY", "STARTING", "QUARANTINED", "HELD", "LAUNCHES/1H", "WARM",
              "IDLE-OUTS/1H", "LAST FAILURE")
    click.echo(f"provisioner status at {stamp(now)}")
    if snap.get("role"):
        click.echo(f"role: {snap['role']['line']}")
    for line in render(header, rows):
        click.echo(line)
    click.echo("")
    click.echo("next cycle:")
    for r in snap["pools"]:
        click.echo(f"  {r['pool']}: {r['next_cycle']['launches']} launches ({r['next_cycle']['reason']})")
    if snap["held"]:
        click.echo("")
        click.echo("held back:")
        for h in snap["held"]:
            pools = f" [{', '.join(h['pools'])}]" if h["pools"] else ""
            click.echo(f"  {h['udid']}{pools} for {span(h['until'] - now)} more: {h['reason']}")
    if snap["foreign_jobs"]:
        click.echo("")
        click.echo(f"WARNING: {snap['foreign_jobs']} live jobs carry our job tag but no launch of ours knows them: "
                   "another daemon with this tag on this account (it double-books phones), or a lost ledger")
    if snap["unknown"]:
        click.echo("")
        click.echo("unknown now:")
        for line in snap["unknown"]:
            click.echo(f"  {line}")
    if not snap["ledger"]:
        click.echo("\n(no ledger yet: nothing was ever launched from this state directory)")


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(config_path: Path, as_json: bool) -> None:
    """One snapshot per pool: pending, claimed, phones idle, busy, starting, quarantined, held back, launches in the
    last hour, the last launch failure, and what the next cycle would launch. Reads the remote services once and
    the ledger; starts nothing."""
    with loaded_with_ledger(config_path) as (loaded, ledger):
        snap = snapshot(loaded.config, loaded.runtime, ledger, loaded.context.clock)
    emit(snap, as_json, print_snapshot)
