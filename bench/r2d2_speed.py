"""R2D2 multi-scale extraction speed: naver/r2d2's extract_multiscale against ours, in one process,
interleaved, on one real image with the real weights (median of --repeat runs; CPU and wall seconds).

    python bench/r2d2_speed.py --reference /tmp/r2d2-ref --image ../shared/data/hpatches/partial_pairs/v_adam/1.ppm

The reference is imported from a scratch export of naver/r2d2 (see bench/r2d2_fidelity.py, never
committed here).  Variants: ours as shipped (same outputs), ours with the network in channels-last
(`model.channels_last=true`: other convolution kernels, so float differences; the keypoint agreement is
printed).  --profile prints torch's profile of ours (which operators dominate).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corrlab.datamodules.image_io import read_image  # noqa: E402
from corrlab.models.r2d2.checkpoint import load_official  # noqa: E402
from corrlab.models.r2d2.extract import ExtractionConfig, extract_keypoints  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function):
    cpu, wall = cpu_seconds(), time.perf_counter()
    result = function()
    return result, cpu_seconds() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=Path("../shared/data/weights/r2d2/r2d2_WASF_N16.pt"))
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--max-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(args.reference))
    import extract as reference  # naver/r2d2 extract.py (scratch copy)

    ref_net = reference.load_network(str(args.weights))
    detector = reference.NonMaxSuppression(rel_thr=0.7, rep_thr=0.7)
    net = load_official(args.weights)
    fast = load_official(args.weights).to(memory_format=torch.channels_last)
    image = read_image(args.image)
    config = ExtractionConfig(max_size=args.max_size)
    normalised = reference.norm_RGB(reference.Image.open(args.image).convert("RGB"))[None]

    def run_reference():
        xys, desc, scores = reference.extract_multiscale(ref_net, normalised, detector, max_size=args.max_size)
        order = scores.numpy().argsort()[-5000:]
        return xys[order], desc[order]

    if args.profile:
        with torch.profiler.profile() as profile:
            extract_keypoints(net, image, config)
        print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    variants = {
        "reference": run_reference,
        "ours": lambda: (lambda k: (k.xys, k.descriptors))(extract_keypoints(net, image, config)),
        "ours channels-last": lambda: (lambda k: (k.xys, k.descriptors))(extract_keypoints(fast, image, config)),
    }
    times = {name: [] for name in variants}
    outputs = {}
    for _ in range(args.repeat):
        for name, function in variants.items():
            outputs[name], cpu, wall = timed(function)
            times[name].append((cpu, wall))
    print(f"{args.image} (max size {args.max_size}), median of {args.repeat}, torch threads {torch.get_num_threads()}")
    base_cpu = statistics.median(c for c, _ in times["reference"])
    base_wall = statistics.median(w for _, w in times["reference"])
    for name, runs in times.items():
        cpu, wall = statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs)
        xys, desc = outputs[name]
        ref_xys, ref_desc = outputs["reference"]
        same = xys.shape == ref_xys.shape and torch.equal(xys, ref_xys)
        ours_order, ref_order = (np.lexsort(k.numpy().T[::-1]) for k in (xys, ref_xys))  # by (x, y, scale)
        same_set = xys.shape == ref_xys.shape and torch.equal(xys[ours_order], ref_xys[ref_order])
        diff = (desc[ours_order] - ref_desc[ref_order]).abs().max().item() if same_set else float("nan")
        agreement = "identical" if same else ("same set, other order" if same_set else "DIFFER")
        print(
            f"{name:<20} cpu {cpu:7.2f} s  wall {wall:7.2f} s  speed-up cpu x{base_cpu / cpu:.2f} wall x{base_wall / wall:.2f}"
            f"  keypoints {agreement}  max|desc diff| {diff:.1e}"
        )


if __name__ == "__main__":
    main()
