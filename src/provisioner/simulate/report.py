"""The report: the provisioner and the baseline side by side with ratios, and the targets a scenario names."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Settings
from ..sim.config import FleetConfig
from .metrics import Metrics
from .scenario import Scenario


@dataclass(frozen=True)
class Check:
    target: str
    what: str
    ok: bool
    detail: str


# (label, attribute, unit, better): better is "lower" or "higher"; the ratio is always "how many times better"
ROWS: list[tuple[str, str, str, str]] = [
    ("time to full utilization (every phone busy)", "full_utilization_in", "s", "lower"),
    ("every burst task claimed", "burst_claimed_in", "s", "lower"),
    ("task wait p50", "wait_p50", "s", "lower"),
    ("task wait p95", "wait_p95", "s", "lower"),
    ("task wait max", "wait_max", "s", "lower"),
    ("tasks claimed / created", "claimed", "", ""),
    ("launches", "launches", "", "lower"),
    ("wasted launches", "wasted", "", "lower"),
    ("idle-outs (warm launches, no task)", "idle_outs", "", "lower"),
    ("phone time waiting for a task", "waiting_minutes", "min", "lower"),
    ("double bookings", "double_bookings", "", "lower"),
    ("launches on quarantined phones", "quarantined_launches", "", "lower"),
    ("launches that found no free phone (the cloud picks)", "no_free_phone", "", "lower"),
    ("cycles a group had more launches starting than members", "overbooked_cycles", "", "lower"),
    ("failed submissions", "launch_failures", "", "lower"),
    ("phone utilization", "utilization", "%", "higher"),
    ("remote calls per cycle", "calls_per_cycle", "", ""),
    ("remote calls per hour", "calls_per_hour", "", "lower"),
    ("cycles", "cycles", "", ""),
    ("cycles with unknown data", "unknown_cycles", "", ""),
    ("launches on unknown data", "launches_on_unknown", "", "lower"),
    ("back to normal after fault", "recovery", "s", "lower"),
    ("crashes", "crashes", "", "lower"),
    ("planning per cycle (median)", "plan_ms_median", "ms", ""),
]


def fmt(value: object, unit: str) -> str:
    if value is None:
        return "never" if unit == "s" else "-"
    if isinstance(value, list):
        return ", ".join(fmt(v, unit) for v in value) if value else "-"
    if isinstance(value, float) and math.isinf(value):
        return "never"
    if unit == "%":
        return f"{100 * float(value):.1f} %"  # type: ignore[arg-type]
    if unit == "min":
        return f"{float(value):.0f} min"  # type: ignore[arg-type]
    if unit == "ms":
        return f"{float(value):.1f} ms"  # type: ignore[arg-type]
    if unit == "s":
        return f"{float(value):.0f} s"  # type: ignore[arg-type]
    if isinstance(value, float):
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return str(value)


def ratio(ours: object, theirs: object, better: str) -> str:
    """How many times better the provisioner is ('-' when it cannot be said)."""
    if not better or not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)):
        return "-"
    if ours == theirs:
        return "1.0x" if ours else "-"
    good, bad = (theirs, ours) if better == "lower" else (ours, theirs)
    if bad == 0:
        return "inf"
    return f"{good / bad:.1f}x"


def value(m: Metrics, attr: str) -> object:
    if attr == "claimed":
        return f"{m.claimed} / {m.tasks}"
    return getattr(m, attr)


def table(ours: Metrics, theirs: Metrics | None) -> list[list[str]]:
    rows = [["", ours.policy] + ([theirs.policy, "ratio"] if theirs else [])]
    for label, attr, unit, better in ROWS:
        a = value(ours, attr)
        if attr in ("recovery",) and not a and not (theirs and value(theirs, attr)):
            continue
        if attr == "overbooked_cycles" and a is None and (theirs is None or value(theirs, attr) is None):
            continue  # no group pool
        if attr == "plan_ms_median" and a is None:
            continue
        row = [label, fmt(a, unit)]
        if theirs is not None:
            b = value(theirs, attr)
            row += [fmt(b, unit), ratio(_scalar(a), _scalar(b), better)]
        rows.append(row)
    for queue, (p50, p95, worst) in ours.wait_by_queue.items():
        row = [f"wait p50/p95/max {queue}", f"{p50:.0f}/{p95:.0f}/{worst:.0f} s"]
        if theirs is not None:
            b = theirs.wait_by_queue.get(queue)
            row += [f"{b[0]:.0f}/{b[1]:.0f}/{b[2]:.0f} s" if b else "-", ratio(p50, b[0], "lower") if b else "-"]
        rows.append(row)
    return rows


def columns(runs: list[Metrics]) -> list[list[str]]:
    """Several runs side by side (``simulate --warm 0,4,auto``): one column each, no ratio."""
    rows = [[""] + [m.policy for m in runs]]
    for label, attr, unit, _ in ROWS:
        cells = [value(m, attr) for m in runs]
        if attr in ("recovery", "plan_ms_median") and not any(cells) or all(c is None for c in cells):
            continue
        rows.append([label] + [fmt(c, unit) for c in cells])
    for queue in runs[0].wait_by_queue:
        got = [m.wait_by_queue.get(queue) for m in runs]
        rows.append([f"wait p50/p95/max {queue}"] + [f"{b[0]:.0f}/{b[1]:.0f}/{b[2]:.0f} s" if b else "-" for b in got])
    return rows


def _scalar(v: object) -> object:
    if isinstance(v, list):
        return max(v) if v else None
    return v


def render(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# --- targets -------------------------------------------------------------------------------------------------

Target = Callable[[Metrics, "Metrics | None", Settings, Scenario], list[Check]]


def launch_to_claim(sc: Scenario) -> float:
    """Seconds from the start of a launch call until its worker can claim: upload, initiated, pre."""
    fleet = FleetConfig.from_options(sc.sim)
    return fleet.upload_seconds + fleet.startup_seconds + fleet.pre_seconds


def _burst(ours: Metrics, theirs: Metrics | None, s: Settings, sc: Scenario) -> list[Check]:
    startup = launch_to_claim(sc)
    limit = startup + ours.burst_tasks * s.launch_interval + s.interval
    got = ours.burst_claimed_in
    checks = [
        Check("burst", f"every task claimed within {startup:g} + {ours.burst_tasks} x {s.launch_interval:g} + "
              f"{s.interval:g} = {limit:g} s", got is not None and got <= limit, fmt(got, "s")),
        Check("burst", "no double booking", ours.double_bookings == 0, str(ours.double_bookings)),
        Check("burst", "no wasted launch", ours.wasted == 0, str(ours.wasted)),
    ]
    if theirs is not None:
        a, b = ours.full_utilization_in, theirs.full_utilization_in
        if a is not None:
            b_ = b if b is not None else theirs.duration
            checks.append(Check("burst", ">= 2x sooner to full utilization than the baseline",
                                b_ >= 2 * a, f"{fmt(b, 's')} / {fmt(a, 's')} = {b_ / a:.2f}x"))
        a, b = ours.burst_claimed_in, theirs.burst_claimed_in
        if a is not None:
            b_ = b if b is not None else theirs.duration
            checks.append(Check("burst", "every task claimed sooner than the baseline (informative: launch-to-claim "
                                "is the same for both)", b_ > a, f"{fmt(b, 's')} / {fmt(a, 's')} = {b_ / a:.2f}x"))
    return checks


def _no_waste(ours: Metrics, theirs: Metrics | None, s: Settings, sc: Scenario, name: str = "no-waste") -> list[Check]:
    return [
        Check(name, "no wasted launch", ours.wasted == 0, str(ours.wasted)),
        Check(name, "no double booking", ours.double_bookings == 0, str(ours.double_bookings)),
    ]


def _group(ours: Metrics, theirs: Metrics | None, s: Settings, sc: Scenario) -> list[Check]:
    """Group pools (the cloud picks among the members): never overbooked, nothing wasted."""
    return _no_waste(ours, theirs, s, sc, "group") + [
        Check("group", "no launch naming no phone found no free phone to take", ours.no_free_phone == 0,
              str(ours.no_free_phone)),
        Check("group", "never more launches starting in a group than it has members", ours.overbooked_cycles == 0,
              f"{ours.overbooked_cycles} cycles"),
    ]


def _clean(ours: Metrics, theirs: Metrics | None, s: Settings, sc: Scenario) -> list[Check]:
    checks = _no_waste(ours, theirs, s, sc, "clean")
    if theirs is not None:
        checks.append(Check("clean", "the baseline has some (waste or double booking)",
                            theirs.wasted + theirs.double_bookings > 0,
                            f"wasted {theirs.wasted}, double bookings {theirs.double_bookings}"))
    return checks


def _faults(ours: Metrics, theirs: Metrics | None, s: Settings, sc: Scenario) -> list[Check]:
    worst = max(ours.recovery, default=0.0)
    return [
        Check("faults", "no crash", ours.crashes == 0, str(ours.crashes)),
        Check("faults", "no launch made on unknown data", ours.launches_on_unknown == 0,
              f"{ours.launches_on_unknown} launches in {ours.unknown_cycles} cycles with unknown data"),
        Check("faults", f"back to normal within one cycle ({s.interval:g} s) after each fault ends",
              worst <= s.interval, fmt(ours.recovery, "s")),
    ]


def _large(ours: Metrics, theirs: Metrics | None, s: Settings, sc: Scenario) -> list[Check]:
    got = ours.plan_ms_median
    return [Check("large", "planning one cycle under 50 ms (median)", got is not None and got < 50, fmt(got, "ms"))]


def _priority(ours: Metrics, theirs: Metrics | None, s: Settings, sc: Scenario) -> list[Check]:
    by_priority = sorted(sc.pools.values(), key=lambda p: -int(p.get("priority", 0)))
    high, low = by_priority[0].get("queue"), by_priority[-1].get("queue")
    a, b = ours.wait_by_queue.get(high), ours.wait_by_queue.get(low)
    ok = a is not None and b is not None and a[0] <= b[0]
    detail = f"p50 {a[0]:.0f} s vs {b[0]:.0f} s" if a and b else "-"
    return [
        Check("priority", "the higher-priority pool waits no longer (p50)", ok, detail),
        Check("priority", "no double booking", ours.double_bookings == 0, str(ours.double_bookings)),
    ]


WARM_WAIT = 30.0  # seconds: the median task wait warm workers must reach where tasks arrive steadily


def _warm(ours: Metrics, theirs: Metrics | None, s: Settings, sc: Scenario) -> list[Check]:
    """For a run with warm workers (``simulate --warm N|auto``): tasks wait seconds, not minutes."""
    if ours.policy in ("provisioner", "baseline", "warm=0"):
        return []
    return [Check("warm", f"median task wait under {WARM_WAIT:g} s", ours.wait_p50 < WARM_WAIT,
                  f"{fmt(ours.wait_p50, 's')} ({ours.idle_outs} idle-outs)")]


IDLE_OUT_SHARE = 0.10  # of launches: the most warm workers may idle out where they pay for themselves


def _warm_pays(ours: Metrics, theirs: Metrics | None, s: Settings, sc: Scenario) -> list[Check]:
    """For a run with warm workers: few idle out, and the median task waits under a third of what it would
    without them. Without warm workers no task is claimed sooner than a launch takes to claim, so the no-warm
    median is at least the scenario's launch-to-claim time, and a third of that is the bar."""
    if ours.policy in ("provisioner", "baseline", "warm=0"):
        return []
    bar = launch_to_claim(sc) / 3
    share = ours.idle_outs / ours.launches if ours.launches else 0.0
    return [
        Check("warm-pays", f"idle-outs under {IDLE_OUT_SHARE:.0%} of launches", share < IDLE_OUT_SHARE,
              f"{ours.idle_outs} of {ours.launches} ({share:.1%})"),
        Check("warm-pays", f"median task wait under a third of launch-to-claim ({bar:g} s)",
              ours.wait_p50 < bar, fmt(ours.wait_p50, "s")),
    ]


TARGETS: dict[str, Target] = {
    "burst": _burst, "clean": _clean, "group": _group, "no-waste": _no_waste, "faults": _faults, "large": _large,
    "priority": _priority, "warm": _warm, "warm-pays": _warm_pays,
}


def checks(ours: Metrics, theirs: Metrics | None, settings: Settings, scenario: Scenario) -> list[Check]:
    out: list[Check] = []
    for name in scenario.targets:
        target = TARGETS.get(name)
        if target is None:
            out.append(Check(name, f"unknown target (known: {', '.join(TARGETS)})", False, "-"))
        else:
            out += target(ours, theirs, settings, scenario)
    return out


def render_checks(found: list[Check]) -> str:
    return "\n".join(f"{'PASS' if c.ok else 'FAIL'}  {c.target}: {c.what}: {c.detail}" for c in found)
