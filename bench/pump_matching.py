"""PUMP matching (single scale, multi-scale or recursive), the reference (naver/pump) against ours, side by side.

Needs a scratch checkout of naver/pump OUTSIDE this repository (its code and demo images are
CC BY-NC-SA and never committed here), made runnable on CPU (Pillow >= 10: Image.ANTIALIAS ->
Image.LANCZOS in datasets/pair_loader.py).  Both sides get the same randomly initialised ConvMixer
(saved in the official format), the same demo pair and the same --resize:

    python -m bench.pump_matching --reference /tmp/ref_pump --resize 256 300 --repeat 3
    python -m bench.pump_matching --reference /tmp/ref_pump --mode multi --resize 256 --repeat 3
    python -m bench.pump_matching --reference /tmp/ref_pump --mode recursive --resize 256 --shrink 2 --repeat 3

`--mode multi` needs the reference's extension built in the checkout (its CPU merge of the scales lives
there): in core/cuda_deepm, `.type()` -> `.scalar_type()` in the AT_DISPATCH lines of kernels.cu (PyTorch >= 2.x),
then `CUDA_HOME=/usr/local/cuda TORCH_CUDA_ARCH_LIST=9.0 python setup.py build_ext --inplace` and copy the
cuda_deepm*.so it writes there to the checkout's root (where its `import cuda_deepm` looks); it runs on the
CPU without a GPU.  `--mode recursive`: the reference's one --resize is its coarse and its tile size, so ours
gets `--fine-size` equal to --resize; both match the images as given (no prior resize).

For each size it runs `--repeat` rounds of (ours, reference), interleaved so both see the same load of a
shared machine, and prints the medians of the per-round ratios: whole process, matching pipeline without
start-up (bench/pump_driver.py), peak RSS (also above the peak of a bare `import torch`); then it
compares the correspondences (in resized-image pixels): ours must be the reference's minus the rows
its float32 reciprocity keys let through (see docs/pump.md).  Finally it fits peak memory =
a + b * (level-0 elements) per implementation and reports the largest --resize under --budget-gb.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
    """The reference maps x with H/H' and y with W/W' (its scale matrix swaps the axes); size 0: not resized."""
    out = corres[:, :4].copy()
    if size == 0:
        return out
    for columns, (h, w) in ((slice(0, 2), DEMO_SHAPES[0]), (slice(2, 4), DEMO_SHAPES[1])):
        nh, nw = max_side_shape(h, w, size)
        out[:, columns] /= np.array([h / nh, w / nw])
    return out


def to_resized_ours(corres: np.ndarray, size: int) -> np.ndarray:
    """Ours: pixel centres at integers, x_original = (x + 0.5) * W / W' - 0.5; size 0: not resized."""
    out = corres[:, :4].copy()
    if size == 0:
        return out
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


SCRIPTS = {"single": "test_singlescale", "multi": "test_multiscale", "recursive": "test_singlescale_recursive"}


def mode_arguments(mode: str, size: int) -> str:
    """Our CLI's arguments that make its run the reference's: the recursive reference's one --resize is both its
    coarse and its fine (tile) size."""
    return f"--fine-size {size}" if mode == "recursive" else ""


def shrunk(image: Path, factor: int, folder: Path) -> Path:
    """`image` shrunk by an integer factor (area average), saved losslessly so both sides read the same pixels."""
    picture = Image.open(image).convert("RGB")
    out = folder / f"{image.stem}_shrunk{factor}.png"
    picture.resize((picture.width // factor, picture.height // factor), Image.Resampling.BOX).save(out)
    return out


def run_once(command: str, timing: Path) -> dict:
    """One process: wall seconds, peak RSS, the pipeline seconds its driver wrote, the 1-min load before it."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", "bash", "-c", command], cwd=ROOT, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {command}\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"maxrss_kb=(\d+)", proc.stderr).group(1)) * 1024
    return {
        "wall_s": wall,
        "peak_rss_bytes": rss,
        "pipeline_s": json.loads(timing.read_text())["pipeline_s"],
        "load": load,
    }


def import_floor_bytes(python: str) -> int:
    """Peak RSS of a process that only imports torch: the floor under either side's peak."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", python, "-c", "import torch"], capture_output=True, text=True
    )
    return int(re.search(r"maxrss_kb=(\d+)", proc.stderr).group(1)) * 1024


def paired_runs(commands: dict[str, str], timings: dict[str, Path], repeat: int) -> list[dict[str, dict]]:
    """`repeat` rounds of ours then the reference, interleaved so that both see the same machine load."""
    rounds = []
    for index in range(repeat):
        rounds.append({side: run_once(commands[side], timings[side]) for side in ("ours", "reference")})
        r = rounds[-1]
        print(
            f"  round {index + 1}: reference {r['reference']['wall_s']:.1f} s ({r['reference']['pipeline_s']:.1f} s "
            f"pipeline, {r['reference']['peak_rss_bytes'] / 2**30:.2f} GiB), ours {r['ours']['wall_s']:.1f} s "
            f"({r['ours']['pipeline_s']:.1f} s, {r['ours']['peak_rss_bytes'] / 2**30:.2f} GiB), "
            f"load {r['reference']['load']:.1f}/{r['ours']['load']:.1f}",
            flush=True,
        )
    return rounds


def summarise(rounds: list[dict[str, dict]], floor: int) -> dict:
    """Medians of the per-round ratios (reference / ours for time, ours / reference for memory)."""

    def median(f) -> float:
        return float(np.median([f(r["reference"], r["ours"]) for r in rounds]))

    return {
        "process_speedup": median(lambda ref, our: ref["wall_s"] / our["wall_s"]),
        "pipeline_speedup": median(lambda ref, our: ref["pipeline_s"] / our["pipeline_s"]),
        "memory_ratio": median(lambda ref, our: our["peak_rss_bytes"] / ref["peak_rss_bytes"]),
        "memory_ratio_above_import": median(
            lambda ref, our: (our["peak_rss_bytes"] - floor) / (ref["peak_rss_bytes"] - floor)
        ),
        "load": float(np.median([r[s]["load"] for r in rounds for s in r])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="scratch checkout of naver/pump (runnable on CPU)")
    parser.add_argument("--resize", type=int, nargs="+", default=[256, 300])
    parser.add_argument("--mode", choices=tuple(SCRIPTS), default="single")
    parser.add_argument(
        "--ours-only",
        type=int,
        nargs="*",
        default=[],
        help="larger sizes run for ours only (the reference would exhaust memory)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="paired rounds per size (medians of their ratios)")
    parser.add_argument(
        "--ours-args", default="", help="extra arguments for our CLI, e.g. '--level0 conv' (the reference's order)"
    )
    parser.add_argument(
        "--shrink",
        type=int,
        default=1,
        help="recursive mode: match the demo images shrunk by this factor (the reference's tiles on the full "
        "1600 x 1060 images take over 40 min per run)",
    )
    parser.add_argument("--budget-gb", type=float, default=24.0)
    parser.add_argument("--json", default=None, help="write all figures to this file")
    args = parser.parse_args()
    if args.shrink != 1 and args.mode != "recursive":
        parser.error("--shrink is for --mode recursive (the other modes resize the demo images themselves)")
    reference = Path(args.reference).resolve()
    python = sys.executable
    work = Path(tempfile.mkdtemp(prefix="pump_bench_"))
    random_weights(reference / "checkpoints" / "corrlab_random.pt")
    weights = reference / "checkpoints" / "corrlab_random.pt"
    img1, img2 = (str(reference / p) for p in DEMO)
    if args.shrink != 1:
        img1, img2 = (str(shrunk(Path(p), args.shrink, work)) for p in (img1, img2))
        print(f"matching the demo images shrunk {args.shrink}x: {img1}, {img2}")
    driver = f"{python} -m bench.pump_driver"
    floor = import_floor_bytes(python)
    print(f"peak RSS of `import torch` alone: {floor / 2**30:.2f} GiB; {os.cpu_count()} CPUs; mode {args.mode}")
    report = {"import_floor_bytes": floor, "mode": args.mode, "repeat": args.repeat}
    timings = {side: work / f"{side}.json" for side in ("reference", "ours")}
    for size in args.resize:
        outputs = {side: work / f"{side}_{size}.npz" for side in ("reference", "ours")}
        commands = {
            "reference": f"{driver} {SCRIPTS[args.mode]} {reference} {timings['reference']} --img1 {img1} --img2 {img2} "
            f"--resize {size} --device cpu --desc corrlab_random --output {outputs['reference']}",
            "ours": f"{driver} ours - {timings['ours']} --img1 {img1} --img2 {img2} --resize {size} --mode {args.mode} "
            f"--weights {weights} --output {outputs['ours']} {mode_arguments(args.mode, size)} {args.ours_args}",
        }
        print(f"\n--resize {size}: level 0 = {level0_elements(size):,} elements", flush=True)
        rounds = paired_runs(commands, timings, args.repeat)
        summary = summarise(rounds, floor)
        print(
            f"  medians of {args.repeat} paired ratios: process {summary['process_speedup']:.2f}x, pipeline "
            f"{summary['pipeline_speedup']:.2f}x faster; peak memory {summary['memory_ratio']:.3f} of the reference's "
            f"({summary['memory_ratio_above_import']:.3f} above the import floor); median load {summary['load']:.1f}"
        )
        frame = 0 if args.mode == "recursive" else size  # the recursive mode matches the images as given
        same = compare(load_corres(outputs["reference"]), load_corres(outputs["ours"]), frame)
        print("  correspondences (rounded to resized-image pixels):", same)
        report[size] = {"rounds": rounds, **summary, "correspondences": same}
    for size in args.ours_only:
        command = (
            f"{driver} ours - {timings['ours']} --img1 {img1} --img2 {img2} --resize {size} --mode {args.mode} "
            f"--weights {weights} --output {work / f'ours_{size}.npz'} {mode_arguments(args.mode, size)} {args.ours_args}"
        )
        result = run_once(command, timings["ours"])
        print(
            f"\n--resize {size} (ours only): level 0 = {level0_elements(size):,} elements; {result['wall_s']:.1f} s "
            f"({result['pipeline_s']:.1f} s pipeline), {result['peak_rss_bytes'] / 2**30:.2f} GiB, load {result['load']:.1f}"
        )
        report[size] = {"rounds": [{"ours": result}]}
    if len(args.resize) > 1 and args.mode == "single":  # the fit is in the single-scale level-0 size
        budget = args.budget_gb * 2**30

        def peak(size: int, side: str) -> int:
            return max(r[side]["peak_rss_bytes"] for r in report[size]["rounds"])

        ours_sizes = args.resize + args.ours_only
        fits = {
            "reference": largest_size(args.resize, [peak(s, "reference") for s in args.resize], budget),
            "ours": largest_size(ours_sizes, [peak(s, "ours") for s in ours_sizes], budget),
        }
        print(f"largest --resize under {args.budget_gb:g} GB (linear fit of peak RSS in the level-0 size): {fits}")
        report["largest_resize"] = fits
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
