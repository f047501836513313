"""``simulate --plot``: per pool, pending tasks, workers starting, phones busy and idle over time, one row of
panels per pool and one line style per policy; and the distribution of task waits of each policy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..simulate.metrics import Metrics
from ..simulate.runner import RunResult
from . import pyplot, save

SERIES = (("pending", "pending tasks"), ("starting", "workers starting (not claimed)"), ("busy", "phones busy"),
          ("idle", "phones idle"))
MAX_POOLS = 6  # more pools than this: the busiest ones (by tasks) are drawn


def plot_runs(runs: Sequence[RunResult], metrics: Sequence[Metrics], path: Path) -> None:
    plt = pyplot()
    pools = _pools(runs[0])
    fig, axes = plt.subplots(len(pools) + 1, len(SERIES), figsize=(4 * len(SERIES), 2.6 * (len(pools) + 1)),
                             squeeze=False)
    styles = ["-", "--", ":", "-."]
    for row, pool in enumerate(pools):
        for col, (attr, title) in enumerate(SERIES):
            ax = axes[row][col]
            for i, run in enumerate(runs):
                points = run.series.get(pool, [])
                xs = [p.at / 60 for p in points]
                ys = [getattr(p, attr) for p in points]
                ax.step(xs, [float("nan") if y is None else y for y in ys], styles[i % len(styles)], where="post",
                        label=run.policy, linewidth=1.2)
            ax.set_title(f"{pool}: {title}", fontsize=9)
            ax.set_xlabel("minutes", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    waits_ax = axes[-1][0]
    for i, run in enumerate(runs):
        waits = sorted(_waits(run))
        if waits:
            ys = [(k + 1) / len(waits) for k in range(len(waits))]
            waits_ax.step(waits, ys, styles[i % len(styles)], where="post", label=run.policy)
    waits_ax.set_title("task waits (share of tasks waiting at most x)", fontsize=9)
    waits_ax.set_xlabel("seconds from creation to claim", fontsize=8)
    waits_ax.grid(alpha=0.3)
    waits_ax.legend(fontsize=8)
    summary = axes[-1][1]
    summary.axis("off")
    lines = [f"{m.policy}: wait p50 {m.wait_p50:.0f} s, p95 {m.wait_p95:.0f} s; {m.launches} launches, "
             f"{m.idle_outs} idle-outs, {m.wasted} wasted" for m in metrics]
    summary.text(0, 1, "\n".join(lines), va="top", fontsize=8, family="monospace")
    for ax in axes[-1][2:]:
        ax.axis("off")
    fig.suptitle(f"scenario {runs[0].scenario.name}: {runs[0].scenario.description}", fontsize=10)
    save(fig, path)


def _pools(run: RunResult) -> list[str]:
    tasks_by_queue: dict[str, int] = {}
    for queue, _, _ in run.stats["tasks"]:
        tasks_by_queue[queue] = tasks_by_queue.get(queue, 0) + 1
    pools = sorted(run.pools, key=lambda p: (-tasks_by_queue.get(p.queue, 0), p.name))
    return [p.name for p in pools[:MAX_POOLS]]


def _waits(run: RunResult) -> list[float]:
    end = run.stats["now"]
    return [(claimed if claimed is not None else end) - created for _, created, claimed in run.stats["tasks"]]
