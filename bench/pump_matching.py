"""PUMP single-scale matching, the reference (naver/pump) against ours, side by side in one run.

Needs a scratch checkout of naver/pump OUTSIDE this repository (its code and demo images are
CC BY-NC-SA and never committed here), made runnable on CPU (Pillow >= 10: Image.ANTIALIAS ->
Image.LANCZOS in datasets/pair_loader.py).  Both sides get the same randomly initialised ConvMixer
(saved in the official format), the same demo pair and the same --resize:

    python bench/pump_matching.py --reference /tmp/ref_pump --resize 256 300 --repeat 3

For each size it prints median wall time and peak RSS of both processes with the ratios, the matching
pipeline's own time without start-up (bench/pump_driver.py), then
compares the correspondences (in resized-image pixels): ours must be the reference's minus the rows
its float32 reciprocity keys let through (see docs/pump.md).  Finally it fits peak memory =
a + b * (level-0 elements) per implementation and reports the largest --resize under --budget-gb.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.runner import Case, run_cases  # noqa: E402
from corrlab.models.convmixer import ConvMixer  # noqa: E402
from corrlab.models.pump.images import max_side_shape  # noqa: E402
from corrlab.models.pump.output import load_corres  # noqa: E402

DEMO = ("datasets/demo_warp/mountains_src.jpg", "datasets/demo_warp/mountains_tgt.jpg")
DEMO_SHAPES = ((1060, 1600), (1069, 1600))  # (H, W) of the two demo images


def random_weights(path: Path, seed: int = 123) -> None:
    """A random ConvMixer (random BatchNorm statistics too) saved as an official checkpoint."""
    torch.manual_seed(seed)
    net = ConvMixer()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    torch.save(net.state_dict(), path)


def level0_elements(size: int) -> int:
    (h1, w1), (h2, w2) = (max_side_shape(h, w, size) for h, w in DEMO_SHAPES)
    return (h1 // 4) * (w1 // 4) * (h2 // 4 * 4) * (w2 // 4 * 4)


def to_resized_reference(corres: np.ndarray, size: int) -> np.ndarray:
    """The reference maps x with H/H' and y with W/W' (its scale matrix swaps the axes)."""
    out = corres[:, :4].copy()
    for columns, (h, w) in ((slice(0, 2), DEMO_SHAPES[0]), (slice(2, 4), DEMO_SHAPES[1])):
        nh, nw = max_side_shape(h, w, size)
        out[:, columns] /= np.array([h / nh, w / nw])
    return out


def to_resized_ours(corres: np.ndarray, size: int) -> np.ndarray:
    """Ours: pixel centres at integers, x_original = (x + 0.5) * W / W' - 0.5."""
    out = corres[:, :4].copy()
    for columns, (h, w) in ((slice(0, 2), DEMO_SHAPES[0]), (slice(2, 4), DEMO_SHAPES[1])):
        nh, nw = max_side_shape(h, w, size)
        out[:, columns] = (out[:, columns] + 0.5) * np.array([nw / w, nh / h]) - 0.5
    return out


def compare(reference: np.ndarray, ours: np.ndarray, size: int) -> dict:
    ref_rows = {
        tuple(r): s
        for r, s in zip(np.rint(to_resized_reference(reference, size)).astype(int).tolist(), reference[:, 4])
    }
    our_rows = {tuple(r): s for r, s in zip(np.rint(to_resized_ours(ours, size)).astype(int).tolist(), ours[:, 4])}
    common = set(ref_rows) & set(our_rows)
    return {
        "reference": len(ref_rows),
        "ours": len(our_rows),
        "common": len(common),
        "only_reference": len(set(ref_rows) - set(our_rows)),
        "only_ours": len(set(our_rows) - set(ref_rows)),
        "max_score_difference": float(max((abs(ref_rows[k] - our_rows[k]) for k in common), default=0.0)),
    }


def largest_size(sizes: list[int], peaks: list[int], budget: float) -> int:
    """Largest --resize whose peak fitted linearly in the level-0 size stays under `budget` bytes."""
    x = np.array([level0_elements(s) for s in sizes], dtype=np.float64)
    slope, intercept = np.polyfit(x, np.array(peaks, dtype=np.float64), 1) if len(sizes) > 1 else (peaks[0] / x[0], 0.0)
    size = sizes[0]
    while intercept + slope * level0_elements(size + 1) <= budget:
        size += 1
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="scratch checkout of naver/pump (runnable on CPU)")
    parser.add_argument("--resize", type=int, nargs="+", default=[256, 300])
    parser.add_argument(
        "--ours-only",
        type=int,
        nargs="*",
        default=[],
        help="larger sizes run for ours only (the reference would exhaust memory)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget-gb", type=float, default=24.0)
    parser.add_argument("--json", default=None, help="write all figures to this file")
    args = parser.parse_args()
    reference = Path(args.reference).resolve()
    python = sys.executable
    work = Path(tempfile.mkdtemp(prefix="pump_bench_"))
    random_weights(reference / "checkpoints" / "corrlab_random.pt")
    report = {}
    for size in args.resize:
        ref_out, our_out = work / f"reference_{size}.npz", work / f"ours_{size}.npz"
        img1, img2 = (str(reference / p) for p in DEMO)
        driver = f"{python} -m bench.pump_driver"
        cases = [
            Case(
                "reference",
                f"{driver} reference {reference} {work / 'reference.json'} --img1 {img1} --img2 {img2} --resize {size} --device cpu --desc corrlab_random --output {ref_out}",
                cwd=str(ROOT),
            ),
            Case(
                "ours",
                f"{driver} ours - {work / 'ours.json'} --img1 {img1} --img2 {img2} --resize {size} --weights {reference / 'checkpoints' / 'corrlab_random.pt'} --output {our_out}",
                cwd=str(ROOT),
            ),
        ]
        print(f"\n--resize {size}: level 0 = {level0_elements(size):,} elements")
        results = run_cases(cases, baseline="reference", repeat=args.repeat)
        times = {r.name: r.median for r in results}
        peaks = {r.name: r.peak_rss_bytes for r in results}
        pipeline = {
            side: json.loads((work / f"{side}.json").read_text())["pipeline_s"] for side in ("reference", "ours")
        }
        print(
            f"pipeline seconds (start-up excluded, last run): reference {pipeline['reference']:.2f}, ours {pipeline['ours']:.2f}, "
            f"ratio {pipeline['reference'] / pipeline['ours']:.2f}x"
        )
        same = compare(load_corres(ref_out), load_corres(our_out), size)
        print("correspondences:", same)
        report[size] = {
            "seconds": times,
            "pipeline_seconds": pipeline,
            "peak_rss_bytes": peaks,
            "speedup": times["reference"] / times["ours"],
            "pipeline_speedup": pipeline["reference"] / pipeline["ours"],
            "memory_ratio": peaks["ours"] / peaks["reference"],
            "correspondences": same,
        }
    for size in args.ours_only:
        out = work / f"ours_{size}.npz"
        img1, img2 = (str(reference / p) for p in DEMO)
        command = f"{python} -m corrlab.models.pump.cli --img1 {img1} --img2 {img2} --resize {size} --weights {reference / 'checkpoints' / 'corrlab_random.pt'} --output {out}"
        print(f"\n--resize {size} (ours only): level 0 = {level0_elements(size):,} elements")
        (result,) = run_cases([Case("ours", command, cwd=str(ROOT))], baseline="ours", repeat=1)
        report[size] = {"seconds": {"ours": result.median}, "peak_rss_bytes": {"ours": result.peak_rss_bytes}}
    if len(args.resize) > 1:
        budget = args.budget_gb * 2**30
        ours_sizes = args.resize + args.ours_only
        fits = {
            "reference": largest_size(
                args.resize, [report[s]["peak_rss_bytes"]["reference"] for s in args.resize], budget
            ),
            "ours": largest_size(ours_sizes, [report[s]["peak_rss_bytes"]["ours"] for s in ours_sizes], budget),
        }
        print(f"largest --resize under {args.budget_gb:g} GB (linear fit of peak RSS in the level-0 size): {fits}")
        report["largest_resize"] = fits
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
