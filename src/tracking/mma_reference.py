"""Published HPatches MMA curves beside ours.

Reads the image-matching-toolbox / r2d2 caches (`<method>.npy`: [i_err, v_err, [seq_type per pair, n_feats,
n_matches per pair]] with i_err/v_err = {threshold px: sum over the i/v pairs of the per-pair MMA}) and corrlab's
eval summary.json, and plots them on one figure:

    python -m corrlab.tracking.mma_reference --cache ../shared/data/reference_results/immatch_hpatches_cache \
        --methods Patch2Pix.im1024.m0.5 NCNet.im1024.m0.9 --ours "Patch2Pix (corrlab)=outputs/.../summary.json" \
        --group all --out mma_hpatches.png
"""

from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrlab.safe_loading import read_npy
from corrlab.tracking.figures import mma_curve, plot_mma_curves

GROUPS = ("all", "i", "v")


@dataclass
class ReferenceMMA:
    """MMA (fractions) per pixel threshold for all / illumination / viewpoint pairs of one cached method."""

    name: str
    curves: dict[str, dict[float, float]]
    num_pairs: dict[str, int]
    mean_matches: float


def read_immatch_cache(path: str | Path) -> ReferenceMMA:
    """One cache file -> its MMA curves (per-pair MMA averaged over the pairs of each group)."""
    path = Path(path)
    try:
        i_err, v_err, stats = read_npy(path.read_bytes(), path)  # pickled dicts, read without running code
        seq_type, _, n_matches = stats
    except (OSError, ValueError, TypeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path}: not an image-matching-toolbox HPatches cache ({error})") from error
    counts = {"i": int(np.sum(np.asarray(seq_type) == "i")), "v": int(np.sum(np.asarray(seq_type) == "v"))}
    counts["all"] = counts["i"] + counts["v"]
    thresholds = sorted(int(t) for t in i_err)
    curves = {
        "i": {float(t): float(i_err[t]) / counts["i"] for t in thresholds},
        "v": {float(t): float(v_err[t]) / counts["v"] for t in thresholds},
        "all": {float(t): float(i_err[t] + v_err[t]) / counts["all"] for t in thresholds},
    }
    return ReferenceMMA(path.stem, curves, counts, float(np.mean(n_matches)))


def read_summary_curve(path: str | Path, group: str) -> dict[float, float]:
    """The MMA curve of a corrlab eval summary.json for group all / i / v."""
    metrics = json.loads(Path(path).read_text())["metrics"]
    curve = mma_curve(metrics, "" if group == "all" else f"{group}/")
    if not curve:
        raise ValueError(f"{path} has no {group} MMA metrics (is it an HPatches evaluation?)")
    return curve


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="folder of <method>.npy caches")
    parser.add_argument("--methods", nargs="+", required=True, help="cache file stems, e.g. Patch2Pix.im1024.m0.5")
    parser.add_argument("--ours", nargs="*", default=[], help="LABEL=path/to/summary.json")
    parser.add_argument("--group", choices=GROUPS, default="all")
    parser.add_argument("--max-threshold", type=float, default=10.0)
    parser.add_argument("--out", default="mma_hpatches.png")
    args = parser.parse_args(argv)
    curves = {}
    for method in args.methods:
        reference = read_immatch_cache(Path(args.cache) / f"{method}.npy")
        curves[f"{method} (published)"] = reference.curves[args.group]
    for entry in args.ours:
        label, _, path = entry.partition("=")
        if not path:
            raise ValueError(f"--ours expects LABEL=summary.json, got '{entry}'")
        curves[label] = read_summary_curve(path, args.group)
    curves = {label: {t: v for t, v in c.items() if t <= args.max_threshold} for label, c in curves.items()}
    out = plot_mma_curves(curves, args.out, title=f"HPatches MMA ({args.group})")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
