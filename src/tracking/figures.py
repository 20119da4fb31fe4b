"""PNG figures: matches drawn across an image pair, and MMA curves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402


def _image(tensor: Tensor) -> np.ndarray:
    return tensor.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def draw_matches(
    image0: Tensor,
    image1: Tensor,
    kpts0: Tensor,
    kpts1: Tensor,
    path: str | Path,
    correct: Tensor | None = None,
    title: str = "",
    max_lines: int = 300,
    threshold_px: float | None = None,
    min_width_px: int = 1000,
) -> Path:
    """Side-by-side pair with a line per match (green correct, red wrong, blue unknown), at least
    `min_width_px` wide; the title says what "correct" means and how many of the matches are drawn."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a, b = _image(image0), _image(image1)
    height = max(a.shape[0], b.shape[0])
    canvas = np.zeros((height, a.shape[1] + b.shape[1], 3), np.float32)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] :] = b
    zoom = max(1.0, min_width_px / canvas.shape[1])
    title_inches = 0.55
    fig = plt.figure(figsize=(canvas.shape[1] * zoom / 100, canvas.shape[0] * zoom / 100 + title_inches), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1 - title_inches / fig.get_figheight()))
    ax.imshow(canvas, interpolation="nearest")
    n = kpts0.shape[0]
    keep = (
        torch.randperm(n, generator=torch.Generator().manual_seed(0))[:max_lines] if n > max_lines else torch.arange(n)
    )
    p0, p1 = kpts0[keep].detach().cpu().numpy(), kpts1[keep].detach().cpu().numpy()
    colors = np.tile([[0.2, 0.4, 1.0]], (len(keep), 1))
    if correct is not None:
        ok = correct[keep].detach().cpu().numpy().astype(bool)
        colors = np.where(ok[:, None], [[0.1, 0.9, 0.1]], [[1.0, 0.15, 0.1]])
    for (x0, y0), (x1, y1), color in zip(p0, p1, colors):
        ax.plot([x0, x1 + a.shape[1]], [y0, y1], color=color, linewidth=0.8, alpha=0.8)
    ax.scatter(p0[:, 0], p0[:, 1], s=4, c=colors)
    ax.scatter(p1[:, 0] + a.shape[1], p1[:, 1], s=4, c=colors)
    ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
    ax.set_ylim(canvas.shape[0] - 0.5, -0.5)
    ax.axis("off")
    legend = match_legend(n, len(keep), correct, threshold_px, title)
    fig.text(0.01, 1 - 0.05 / fig.get_figheight(), legend, va="top", ha="left", fontsize=10)
    fig.savefig(path)
    plt.close(fig)
    return path


def match_legend(n: int, drawn: int, correct: Tensor | None, threshold_px: float | None, title: str) -> str:
    """Two title lines: the pair and counts, then what the colours mean and which matches are drawn."""
    counts = f"{n} matches" if correct is None else f"{n} matches, {int(correct.sum())} correct"
    if correct is None:
        colours = "blue: no ground truth to check them"
    else:
        rule = f"error <= {threshold_px:g} px" if threshold_px is not None else "within the benchmark's threshold"
        colours = f"green: correct ({rule}), red: wrong"
    subset = f"drawn: a random {drawn} of {n}" if drawn < n else "all drawn"
    return f"{title}   {counts}".strip() + f"\n{colours}; {subset}"


def plot_mma_curves(curves: Mapping[str, Mapping[float, float]], path: str | Path, title: str = "MMA") -> Path:
    """One line per method: MMA (y, fraction) against the pixel threshold (x)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for label, curve in curves.items():
        thresholds = sorted(curve)
        ax.plot(thresholds, [curve[t] for t in thresholds], marker="o", markersize=3, label=label)
    ax.set_xlabel("threshold [px]")
    ax.set_ylabel("MMA")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def mma_curve(metrics: Mapping[str, float], prefix: str = "") -> dict[float, float]:
    """{threshold: value} from flat metric keys like 'mma@3' (or 'i/mma@3' with prefix 'i/')."""
    start = f"{prefix}mma@"
    return {float(k[len(start) :]): v for k, v in metrics.items() if k.startswith(start)}
