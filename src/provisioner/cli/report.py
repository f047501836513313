"""``provisioner report``: how launches went over a period, per pool and per phone, from the ledger and the
provider's job history. The phones worst first.

Words: a *launch* is a submission we made (or a job of ours the provider lists that the ledger does not hold);
a *failed submission* never became a job; a job ends ``completed``, ``wasted`` (its worker found no task), with a
failure outcome (``[provisioner] job_failure_outcomes``: failed, lambda_error, timeout by default), or otherwise
(aborted, never seen, ...). A failed job's *phase* is ``starting`` when it ended before it was seen running,
``running`` after. The success rate is completed / (completed + failed submissions + failed jobs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from ..history import Ending, endings, in_flight_since, medians
from ..idle_outs import daily, idle_outs_by_phone, warm_minutes
from ..ledger import Hold, Ledger
from ..loop import Provisioner
from ..model import JobState, Launch, LaunchState, RemoteJob
from ..types import RemoteError
from ..plots import plot_check
from .common import config_option
from .status import Duration, emit, loaded_with_ledger, render, span, stamp

UNPLACED = ""  # a launch whose cloud picks the phone (selector, group), never placed on one


@dataclass
class Tally:
    launches: int = 0
    failed_submissions: int = 0
    jobs: int = 0
    completed: int = 0
    wasted: int = 0
    idle_outs: int = 0  # warm launches whose worker never claimed (not wasted, not failed, not completed)
    warm_minutes: float = 0.0  # phone-minutes warm launches spent before serving a task
    failed_jobs: Counter = field(default_factory=Counter)  # outcome -> n
    failed_by_phase: Counter = field(default_factory=Counter)  # starting | running | unknown -> n
    other: Counter = field(default_factory=Counter)  # other outcomes -> n
    in_flight: int = 0
    unrecorded: int = 0  # jobs of ours the provider lists and the ledger does not hold
    to_running: float | None = None  # median seconds from launch to its job running
    to_claim: float | None = None  # median seconds from launch to its worker's claim

    @property
    def failures(self) -> int:
        return self.failed_submissions + sum(self.failed_jobs.values())

    @property
    def success_rate(self) -> float | None:
        judged = self.completed + self.failures
        return self.completed / judged if judged else None

    def count(self, outcome: str, phase: str, failing: Sequence[str], n: int = 1) -> None:
        """``n`` jobs that ended with ``outcome``."""
        self.launches += n
        self.jobs += n
        if outcome == "completed":
            self.completed += n
        elif outcome == "wasted":
            self.wasted += n
        elif outcome in failing:
            self.failed_jobs[outcome] += n
            self.failed_by_phase[phase] += n
        else:
            self.other[outcome] += n

    def as_dict(self) -> dict[str, Any]:
        return {
            "launches": self.launches, "failed_submissions": self.failed_submissions, "jobs": self.jobs,
            "completed": self.completed, "wasted": self.wasted, "idle_outs": self.idle_outs,
            "warm_minutes": round(self.warm_minutes, 1), "failed_jobs": dict(self.failed_jobs),
            "failed_jobs_by_phase": dict(self.failed_by_phase), "other_outcomes": dict(self.other),
            "in_flight": self.in_flight, "unrecorded": self.unrecorded, "success_rate": self.success_rate,
            "median_seconds_to_running": self.to_running, "median_seconds_to_claim": self.to_claim,
        }


@dataclass(frozen=True)
class History:
    """What the report is made of: the ledger's endings (counted), its launches still in flight, the provider's
    jobs the ledger does not hold, and the ledger's medians per pool."""

    endings: Sequence[Ending] = ()
    in_flight: Sequence[Launch] = ()
    jobs: Mapping[str, RemoteJob] = field(default_factory=dict)  # the provider's jobs, by id
    unrecorded: Sequence[RemoteJob] = ()
    to_running: Mapping[str, float] = field(default_factory=dict)  # pool -> median seconds
    to_claim: Mapping[str, float] = field(default_factory=dict)
    idle_outs: Sequence[tuple[str, str, str, int]] = ()  # (pool, udid, outcome, n): endings that were idle-outs
    warm_minutes: Mapping[str, float] = field(default_factory=dict)  # pool -> phone-minutes


def read_history(ledger: Ledger, jobs: Iterable[RemoteJob], since: float) -> History:
    jobs = {j.job_id: j for j in jobs}
    known = ledger.known_job_ids(jobs)
    return History(
        endings(ledger, since), in_flight_since(ledger, since), jobs,
        [j for j in jobs.values() if j.job_id not in known],
        medians(ledger, since, "ran_at"), medians(ledger, since, "claimed_at"),
        idle_outs_by_phone(ledger, since), warm_minutes(ledger, since),
    )


def build_report(
    pools: Sequence[str], history: History, failing: Sequence[str],
) -> tuple[dict[str, Tally], dict[str, Tally], dict[str, set[str]]]:
    """Tallies per pool and per phone (and the pools each phone served)."""
    by_pool = {name: Tally() for name in pools}
    by_phone: dict[str, Tally] = {}
    served: dict[str, set[str]] = {}

    def tallies(pool: str, udid: str) -> list[Tally]:
        out = [by_pool.setdefault(pool, Tally())]
        if udid != UNPLACED:
            out.append(by_phone.setdefault(udid, Tally()))
            served.setdefault(udid, set()).add(pool)
        return out

    for e in history.endings:
        for t in tallies(e.pool, e.udid):
            if e.state == LaunchState.FAILED.value:
                t.launches += e.n
                t.failed_submissions += e.n
            else:
                t.count(e.outcome, "running" if e.ran else "starting", failing, e.n)
    for launch in history.in_flight:  # the provider may know it ended meanwhile
        job = history.jobs.get(launch.job_id) if launch.job_id else None
        ts = tallies(launch.pool, launch.udid or (job.udid if job else UNPLACED))
        if job is not None and job.state is JobState.ENDED:
            for t in ts:
                t.count(job.outcome or "ended", "running" if launch.ran_at is not None else "starting", failing)
        else:
            for t in ts:
                t.launches += 1
                t.jobs += 1
                t.in_flight += 1
    for job in history.unrecorded:
        if job.pool not in by_pool:
            continue
        for t in tallies(job.pool, job.udid or UNPLACED):
            t.unrecorded += 1
            if job.state is JobState.ENDED:
                t.count(job.outcome or "ended", "unknown", failing)
            else:
                t.launches += 1
                t.jobs += 1
                t.in_flight += 1
    for pool, udid, outcome, n in history.idle_outs:  # counted among the endings above: told apart here
        for t in tallies(pool, udid):
            t.idle_outs += n
            if outcome == "wasted":
                t.wasted -= n
            else:
                t.completed -= n
    for name, t in by_pool.items():
        t.to_running, t.to_claim = history.to_running.get(name), history.to_claim.get(name)
        t.warm_minutes = history.warm_minutes.get(name, 0.0)
    return by_pool, by_phone, served


def worst_first(by_phone: Mapping[str, Tally]) -> list[str]:
    def key(udid: str) -> tuple:
        t = by_phone[udid]
        rate = t.success_rate
        return (-t.failures, rate if rate is not None else 2.0, -t.wasted, udid)

    return sorted(by_phone, key=key)


def report_data(
    pool_names: Sequence[str], history: History, holds: Sequence[Hold], held_now: Mapping[str, tuple[float, str]],
    failing: Sequence[str], since: float, now: float, notes: Sequence[str],
) -> dict[str, Any]:
    by_pool, by_phone, served = build_report(pool_names, history, failing)
    hold_count = Counter(h.udid for h in holds if h.source in ("manual", "jobs"))
    for udid in list(hold_count) + list(held_now):
        by_phone.setdefault(udid, Tally())
    phones = []
    for udid in worst_first(by_phone):
        row = {"udid": udid, "pools": sorted(served.get(udid, ())), **by_phone[udid].as_dict(), "holds": hold_count[udid]}
        until, reason = held_now.get(udid, (None, ""))
        row["held_now"] = None if until is None else {"until": until, "reason": reason}
        phones.append(row)
    return {
        "since": since, "until": now,
        "pools": [{"pool": name, **tally.as_dict()} for name, tally in by_pool.items()],
        "phones": phones,
        "holds": [asdict(h) for h in holds],
        "notes": list(notes),
    }


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _outcomes(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def print_report(data: dict[str, Any]) -> None:
    click.echo(f"report from {stamp(data['since'])} to {stamp(data['until'])} ({span(data['until'] - data['since'])})")
    rows = []
    for r in data["pools"]:
        failed = sum(r["failed_jobs"].values())
        phases = _outcomes(r["failed_jobs_by_phase"])
        median, to_claim = r["median_seconds_to_running"], r["median_seconds_to_claim"]
        rows.append((
            r["pool"], r["launches"], r["failed_submissions"], r["jobs"], r["completed"], r["wasted"],
            r["idle_outs"], f"{r['warm_minutes']:.0f}", f"{failed} ({phases})" if failed else 0, r["in_flight"], _pct(r["success_rate"]),
            span(median) if median is not None else "-", span(to_claim) if to_claim is not None else "-",
        ))
    header = ("POOL", "LAUNCHES", "SUBMIT FAILED", "JOBS", "COMPLETED", "WASTED", "IDLE-OUTS", "WARM MIN",
              "FAILED JOBS", "IN FLIGHT",
              "SUCCESS", "TO RUNNING", "TO CLAIM")
    for line in render(header, rows):
        click.echo(line)
    for r in data["pools"]:
        if r["failed_jobs"] or r["other_outcomes"]:
            click.echo(f"  {r['pool']}: failed jobs: {_outcomes(r['failed_jobs']) or 'none'}; "
                       f"other endings: {_outcomes(r['other_outcomes']) or 'none'}")
    click.echo("")
    click.echo("phones, worst first:")
    rows = []
    for r in data["phones"]:
        held = r["held_now"]
        rows.append((
            r["udid"], ",".join(r["pools"]) or "-", r["launches"], r["failed_submissions"],
            _outcomes(r["failed_jobs"]) or 0, r["wasted"], _pct(r["success_rate"]), r["holds"],
            f"until {stamp(held['until'])}: {held['reason']}" if held else "-",
        ))
    header = ("PHONE", "POOLS", "LAUNCHES", "SUBMIT FAILED", "FAILED JOBS", "WASTED", "SUCCESS", "HOLDS", "HELD NOW")
    for line in render(header, rows):
        click.echo(line)
    for note in data["notes"]:
        click.echo(f"note: {note}")


@click.command()
@config_option
@click.option("--since", "window", type=Duration(), default="7d", show_default=True,
              help="How far back: 12h, 7d, 2w...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw launches, failures and launch-to-claim time per day and the worst phones (PNG or SVG "
                   "by extension). Needs provisioner[plot].")
def report(config_path: Path, window: float, as_json: bool, plot_path: Path | None) -> None:
    """Launches, failed submissions, wasted jobs, failed jobs by outcome and phase, and the success rate, per pool
    and per phone (the phones worst first), from the ledger and the provider's job history. Starts nothing."""
    if plot_path is not None:
        plot_check(plot_path)
    days = []
    with loaded_with_ledger(config_path) as (loaded, ledger):
        now = loaded.context.clock.now()
        since = now - window
        notes: list[str] = []
        jobs: list[RemoteJob] = []
        for name in sorted({p.device_provider for p in loaded.runtime.pools}):
            try:
                jobs += loaded.runtime.device_provider(name).jobs(since)
            except RemoteError as exc:
                notes.append(f"{name}: the provider's job history is unknown ({exc}): from the ledger alone")
            except Exception as exc:  # noqa: BLE001 - a plugin bug leaves the ledger's half of the report
                notes.append(f"{name}: job history failed: {type(exc).__name__}: {exc}".splitlines()[0])
        if ledger is None:
            notes.append("no ledger yet: only the provider's job history")
            history, holds, held_now = History(jobs={j.job_id: j for j in jobs}, unrecorded=jobs), [], {}
        else:
            history, holds = read_history(ledger, jobs, since), ledger.hold_history(since)
            provisioner = Provisioner(loaded.config, loaded.runtime, ledger, loaded.context.clock, dry_run=True, inline=True)
            held_now = provisioner.holds(now)
            if plot_path is not None:
                days = daily(ledger, since, loaded.config.settings.job_failure_outcomes)
        data = report_data(
            [p.name for p in loaded.runtime.pools], history, holds, held_now,
            loaded.config.settings.job_failure_outcomes, since, now, notes,
        )
    emit(data, as_json, print_report)
    if plot_path is not None:
        from ..plots.report import plot_report

        plot_report(days, data, plot_path)
        click.echo(f"wrote {plot_path}", err=True)
