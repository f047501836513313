"""``report --plot``: launches and failures per day, the median launch-to-claim time per day, and the worst
phones (most failures first, as the report orders them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..idle_outs import Day
from . import pyplot, save

WORST = 15  # phones shown


def plot_report(days: Sequence[Day], data: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, (per_day, to_claim, worst) = plt.subplots(1, 3, figsize=(15, 4.2))
    labels = [d.day[5:] for d in days]
    xs = range(len(days))
    per_day.bar(xs, [d.launches for d in days], label="launches", color="tab:blue")
    per_day.bar(xs, [d.failures for d in days], label="failures", color="tab:red")
    per_day.plot(xs, [d.idle_outs for d in days], "o-", label="idle-outs (warm)", color="tab:orange")
    per_day.set_title("launches per day", fontsize=10)
    claim = [(i, d.to_claim / 60) for i, d in enumerate(days) if d.to_claim is not None]
    to_claim.plot([i for i, _ in claim], [m for _, m in claim], "o-", color="tab:green")
    to_claim.set_title("launch to claim, median of demand launches (minutes)", fontsize=10)
    to_claim.set_ylim(bottom=0)
    for ax in (per_day, to_claim):
        ax.set_xticks(list(xs), labels, rotation=45, fontsize=8)
        ax.set_xlim(-0.6, max(len(days), 1) - 0.4)
        ax.grid(alpha=0.3)
    per_day.legend(fontsize=8)
    phones = [p for p in data["phones"] if p["launches"] or p["holds"]][:WORST]
    names = [p["udid"] for p in phones][::-1]
    failed = [p["failed_submissions"] + sum(p["failed_jobs"].values()) for p in phones][::-1]
    wasted = [p["wasted"] for p in phones][::-1]
    worst.barh(names, failed, color="tab:red", label="failures")
    worst.barh(names, wasted, left=failed, color="tab:gray", label="wasted")
    worst.set_title(f"worst phones (top {WORST})", fontsize=10)
    worst.tick_params(labelsize=8)
    worst.legend(fontsize=8)
    if not days:
        per_day.text(0.5, 0.5, "no launches in the ledger", ha="center", transform=per_day.transAxes)
    fig.suptitle(f"provisioner report: {len(days)} days", fontsize=11)
    save(fig, path)
