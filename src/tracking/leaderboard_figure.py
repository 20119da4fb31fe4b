"""The leaderboard figure of one protocol: MMA curves (homography), PCK bars (semantic), AEPE per rate (ETH3D),
otherwise bars of the table's first column."""

from __future__ import annotations

import re
from pathlib import Path

from corrlab.tracking.figures import mma_curve, plot_mma_curves, plt  # figures selects the Agg backend
from corrlab.tracking.leaderboard import Run, columns


def plot_leaderboard(runs: list[Run], path: Path, title: str) -> Path:
    protocol = runs[0].protocol
    if protocol == "homography":
        return plot_mma_curves({r.label: mma_curve(r.summary["metrics"]) for r in runs}, path, title=title)
    if protocol == "semantic_pck":
        keys = [k for k in columns(runs) if re.fullmatch(r"pck@[\d.]+", k)]
        return grouped_bars(runs, keys, path, title, ylabel="PCK")
    if protocol == "eth3d_multiview":
        return aepe_per_rate(runs, path, title)
    return grouped_bars(runs, columns(runs)[:1], path, title, ylabel=columns(runs)[0])


def grouped_bars(runs: list[Run], keys: list[str], path: Path, title: str, ylabel: str) -> Path:
    """One group of bars per metric key, one bar per run."""
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(keys) * len(runs) / 2), 4), dpi=100)
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        values = [run.summary["metrics"].get(k, float("nan")) for k in keys]
        ax.bar([j + i * width for j in range(len(keys))], values, width, label=run.label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))], keys)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return finish(fig, ax, path, title)


def aepe_per_rate(runs: list[Run], path: Path, title: str) -> Path:
    """AEPE (log scale) against the ETH3D frame rate, one line per run."""
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for run in runs:
        rates = sorted(
            (int(m.group(1)), v) for k, v in run.summary["metrics"].items() if (m := re.fullmatch(r"rate(\d+)/aepe", k))
        )
        ax.plot([r for r, _ in rates], [v for _, v in rates], marker="o", markersize=3, label=run.label)
    ax.set_xlabel("frame rate (interval)")
    ax.set_ylabel("AEPE [px]")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    return finish(fig, ax, path, title)


def finish(fig, ax, path: Path, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
