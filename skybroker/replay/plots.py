"""Figures in the style of the paper: cost vs deadline per policy, and one run's timeline.

matplotlib is imported here only (Agg backend, no display needed), so nothing else in the
broker pays for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skybroker.policy import OD, SPOT
from skybroker.replay.api import ReplayResult

_COLORS = {
    "on_demand": "#d62728", "greedy": "#ff7f0e", "uniform_progress": "#1f77b4",
    "spot_only": "#9467bd", "time_sliced": "#8c564b", "optimum": "#2ca02c", "best": "#17becf",
    "slack_reserve": "#17becf",
}


_SPARE = ["#e377c2", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a"]


def _color(name: str, k: int) -> str:
    """Fixed colours for known policies; others get spare colours that clash with none."""
    return _COLORS.get(name, _SPARE[k % len(_SPARE)])


def cost_curves(result: ReplayResult) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """policy -> (deadlines h, mean cost $) over the result's runs, grouped by deadline."""
    out = {}
    for p in result.policies:
        rs = [r for r in result.records if r["policy"] == p and np.isfinite(r["cost"])]
        dls = sorted({r["deadline_h"] for r in rs})
        means = [np.mean([r["cost"] for r in rs if r["deadline_h"] == d]) for d in dls]
        out[p] = (np.array(dls), np.array(means))
    return out


def plot_replay(
    curves: ReplayResult,
    timeline: ReplayResult | None,
    out: str | Path,
    title: str = "",
    policies: Sequence[str] | None = None,
) -> Path:
    """Write a two-panel PNG: cost vs deadline (from ``curves``) and run 0 of ``timeline``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(policies or curves.policies)
    rows = 2 if timeline is not None and timeline.timelines else 1
    fig = plt.figure(figsize=(11, 4.2 * rows + (0.6 if rows == 2 else 0)), dpi=110)
    grid = fig.add_gridspec(rows, 2, width_ratios=[1, 1.35], hspace=0.35, wspace=0.28)

    ax = fig.add_subplot(grid[0, :] if rows == 1 else grid[0, 0])
    for k, (p, (dl, cost)) in enumerate(cost_curves(curves).items()):
        if p in names:
            # Dashes keep coinciding curves (e.g. greedy and spot_only) visible.
            ax.plot(dl, cost, marker="o", ms=4, lw=1.8, label=p, color=_color(p, k),
                    ls=("-", "--", "-.", ":")[k % 4])
    ax.set_xlabel("deadline (h)")
    ax.set_ylabel("mean cost per run ($)")
    ax.set_title("cost vs deadline")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)

    if rows == 2:
        assert timeline is not None
        _timeline_panels(fig, grid, timeline, names)
    if title:
        fig.suptitle(title, fontsize=11)
    path = Path(out)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def _timeline_panels(fig, grid, res: ReplayResult, names: list[str]) -> None:
    """Right: summary bars of run 0; bottom: availability, chosen types, progress vs the UP line."""
    run0 = [r for r in res.records if r["run"] == 0]
    spec = run0[0]
    tls = {p: res.timelines[p] for p in names if p in res.timelines}
    gap_h = float(next(iter(tls.values()))["gap_s"]) / 3600.0

    ax = fig.add_subplot(grid[0, 1])
    order = [p for p in names if any(r["policy"] == p for r in run0)]
    costs = [next(r["cost"] for r in run0 if r["policy"] == p) for p in order]
    bars = ax.barh(order, costs, color=[_color(p, k) for k, p in enumerate(order)])
    for b, c in zip(bars, costs):
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" ${c:,.1f}", va="center", fontsize=8)
    ax.set_xlabel("cost of the run below ($)")
    ax.invert_yaxis()
    ax.set_title(f"one run: {spec['duration_h']:g} h job, deadline {spec['deadline_h']:g} h, "
                 f"d = {spec['restart_overhead_h']:g} h", fontsize=9)
    ax.margins(x=0.25)

    sub = grid[1, :].subgridspec(2, 1, height_ratios=[1, 2.2], hspace=0.08)
    ax1 = fig.add_subplot(sub[0])
    ax2 = fig.add_subplot(sub[1], sharex=ax1)
    longest = max(tls.values(), key=lambda t: len(t["avail"]))
    av = longest["avail"].astype(float)
    t = np.arange(len(av)) * gap_h
    ax1.fill_between(t, len(tls), len(tls) + 0.8, where=av > 0, step="post", color="#2ca02c",
                     alpha=0.5, lw=0)
    labels = ["spot available"]
    for k, (p, tl) in enumerate(tls.items()):
        kind = tl["kind"]
        tt = np.arange(len(kind)) * gap_h
        y = len(tls) - 1 - k
        ax1.fill_between(tt, y, y + 0.8, where=kind == SPOT, step="post", color="#1f77b4", lw=0)
        ax1.fill_between(tt, y, y + 0.8, where=kind == OD, step="post", color="#d62728", lw=0)
        labels.append(p)
    ax1.set_yticks(np.arange(len(tls) + 1)[::-1] + 0.4, labels, fontsize=8)
    ax1.set_title("timeline (blue = spot, red = on-demand, blank = idle)", fontsize=9)
    ax1.tick_params(labelbottom=False)

    c0, r0 = spec["duration_h"], spec["deadline_h"]
    for k, (p, tl) in enumerate(tls.items()):
        work_h = np.append(tl["work"], c0 * 3600) / 3600.0
        ax2.step(np.arange(len(work_h)) * gap_h, work_h, where="post", lw=1.6, label=p,
                 color=_color(p, k))
    ax2.plot([0, r0], [0, c0], "k--", lw=1, label="uniform progress  t*C/R")
    ax2.axvline(r0, color="k", lw=0.8, alpha=0.6)
    ax2.text(r0, c0 * 0.05, " deadline", fontsize=8)
    ax2.set_xlabel("time since start (h)")
    ax2.set_ylabel("work done (h)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, frameon=False, loc="upper left")
