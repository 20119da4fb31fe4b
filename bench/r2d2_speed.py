"""R2D2 multi-scale extraction cost: naver/r2d2's extract_multiscale against ours, on one real image with the real
weights, each side in its own fresh process per round (interleaved rounds; medians of CPU seconds of the extraction
and of the whole process's peak RSS, VmHWM), and whether the keypoints agree with the reference's.

    python bench/r2d2_speed.py --reference /tmp/r2d2-ref --image ../shared/data/hpatches/partial_pairs/v_calder/1.ppm

The reference is imported from a scratch export of naver/r2d2 (see bench/r2d2_fidelity.py, never committed here).
Sides: the reference; ours as shipped (same outputs); ours with `model.streamed=true` (each level through the folded
trunk by chunks of rows: other kernels, so float differences), with glibc's default allocator settings (a user's
script) and with eval.py's (freed blocks returned to the OS at once: corrlab.pipeline.memory).  --profile prints
torch's profile of ours (which operators dominate).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SIDE = """
import json, sys, time
side, image_path, weights, max_size, reference, output, profile = sys.argv[1:8]
sys.path.insert(0, ROOT)
if side == "ours_streamed_eval_settings":
    from corrlab.pipeline.memory import return_freed_memory
    return_freed_memory()
import numpy as np, torch
from bench.peak_memory import peak_rss_mb
if side == "reference":
    sys.path.insert(0, reference)
    import extract as ref  # naver/r2d2 extract.py (scratch copy)
    net = ref.load_network(weights)
    detector = ref.NonMaxSuppression(rel_thr=0.7, rep_thr=0.7)
    image = ref.norm_RGB(ref.Image.open(image_path).convert("RGB"))[None]
    def run():
        xys, desc, scores = ref.extract_multiscale(net, image, detector, max_size=int(max_size))
        order = scores.numpy().argsort()[-5000:]
        return xys[order].numpy(), desc[order].numpy()
else:
    from corrlab.datamodules.image_io import read_image
    from corrlab.models.r2d2.checkpoint import load_official
    from corrlab.models.r2d2.extract import ExtractionConfig, extract_keypoints
    net, image, config = load_official(weights), read_image(image_path), ExtractionConfig(max_size=int(max_size))
    streamed = side != "ours"
    def run():
        keypoints = extract_keypoints(net, image, config, streamed)
        return keypoints.xys.numpy(), keypoints.descriptors.numpy()
    if profile == "1":
        with torch.profiler.profile() as prof:
            run()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10), file=sys.stderr)
setup = peak_rss_mb()
start = time.process_time()
xys, descriptors = run()
cpu = time.process_time() - start
np.savez(output, xys=xys, descriptors=descriptors)
print(json.dumps(dict(cpu_s=cpu, peak_rss_mb=peak_rss_mb(), setup_peak_rss_mb=setup)))
""".replace("ROOT", repr(str(ROOT)))

SIDES = ("reference", "ours", "ours_streamed", "ours_streamed_eval_settings")


def agreement(xys: np.ndarray, descriptors: np.ndarray, ref_xys: np.ndarray, ref_descriptors: np.ndarray) -> str:
    """'identical', 'same set, other order' (with the descriptors' max abs difference) or how many are shared."""
    if xys.shape == ref_xys.shape and np.array_equal(xys, ref_xys):
        return f"identical, max|desc diff| {np.abs(descriptors - ref_descriptors).max():.1e}"
    ours, ref = np.lexsort(xys.T[::-1]), np.lexsort(ref_xys.T[::-1])  # by (x, y, scale)
    if xys.shape == ref_xys.shape and np.array_equal(xys[ours], ref_xys[ref]):
        diff = np.abs(descriptors[ours] - ref_descriptors[ref]).max()
        return f"same set, other order, max|desc diff| {diff:.1e}"
    shared = len({tuple(k) for k in xys.tolist()} & {tuple(k) for k in ref_xys.tolist()})
    return f"DIFFER: {shared} of {len(ref_xys)} shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=ROOT.parent / "shared/data/weights/r2d2/r2d2_WASF_N16.pt")
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--max-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.repeat):
            for side in SIDES:
                profile = "1" if args.profile and side == "ours" and round_index == 0 else "0"
                output = f"{folder}/{side}.npz"
                command = [sys.executable, "-c", SIDE, side, str(args.image.resolve()), str(args.weights.resolve())]
                command += [str(args.max_size), str(args.reference.resolve()), output, profile]
                done = subprocess.run(command, cwd=args.reference, check=True, capture_output=True, text=True)
                if profile == "1":
                    print(done.stderr)
                runs[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {round_index + 1} {side}: {runs[side][-1]}", flush=True)
        outputs = {side: np.load(f"{folder}/{side}.npz") for side in SIDES}
    reference = outputs["reference"]
    base_cpu = statistics.median(r["cpu_s"] for r in runs["reference"])
    base_peak = statistics.median(r["peak_rss_mb"] for r in runs["reference"])
    print(f"{args.image} (max size {args.max_size}), medians of {args.repeat} interleaved rounds, fresh processes")
    for side in SIDES:
        cpu = statistics.median(r["cpu_s"] for r in runs[side])
        peak = statistics.median(r["peak_rss_mb"] for r in runs[side])
        setup = statistics.median(r["setup_peak_rss_mb"] for r in runs[side])
        same = agreement(outputs[side]["xys"], outputs[side]["descriptors"], reference["xys"], reference["descriptors"])
        print(
            f"{side:<28} cpu {cpu:6.2f} s (x{base_cpu / cpu:.2f})  peak {peak:6.0f} MB (x{peak / base_peak:.2f};"
            f" {setup:.0f} before the extraction)  keypoints: {same}"
        )


if __name__ == "__main__":
    main()
