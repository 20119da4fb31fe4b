"""Patch2Pix matching, the authors' code against ours in interleaved paired runs, from the same random weights in
the official format: identical matches, wall time and peak memory of each (fresh process per run), the medians of
the per-round ratios (whole process and matching pipeline only), and how far the bfloat16 option moves matches.

    python -m bench.patch2pix_matching --reference /tmp/ref_p2p --images A.jpg B.jpg --max-side 1024 --rounds 3

Both sides run single-threaded by default (--threads 1): on a machine shared with other jobs, the CPU seconds of a
single-threaded process are the work it does, while wall times swing with the load (4x within minutes here); the
table gives CPU and wall seconds, whole process and matching pipeline only.

The reference checkout is not part of corrlab (GrumpyZhou/patch2pix, MIT); it is imported from --reference and
patched at run time to run on a CPU (bench/patch2pix_driver.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.paired_runs import paired_rounds, ratio_table
from bench.runner import Case, run_case

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout of GrumpyZhou/patch2pix")
    parser.add_argument("--images", nargs=2, required=True)
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--io-thres", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each side once per round)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each side (0: torch's default)")
    parser.add_argument("--no-bfloat16", action="store_true", help="skip the model.regressor_dtype=bfloat16 side")
    parser.add_argument("--weights", type=Path, help="reuse official-format weights written by an earlier run")
    parser.add_argument(
        "--init", choices=["calibrated", "xavier"], default="calibrated", help="see bench/patch2pix_driver.py"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="p2p_bench_"))
    weights = args.weights or work / "patch2pix_random.pth"
    driver = f"{sys.executable} -m bench.patch2pix_driver"
    common = f"--weights {weights} --images {args.images[0]} {args.images[1]} --max-side {args.max_side} --io-thres {args.io_thres} --threads {args.threads}"
    if args.weights is None:
        made = run_case(
            Case(
                "weights", f"{driver} weights --init {args.init} --reference {args.reference} {common}", cwd=str(ROOT)
            ),
            repeat=1,
        )
        if made.returncode != 0:
            raise SystemExit("writing the weights failed")
    print(f"weights: {weights}")
    sides = {
        "reference": f"{driver} reference --reference {args.reference} {common}",
        "ours": f"{driver} ours {common}",
    }
    if not args.no_bfloat16:
        sides["ours-bf16"] = f"{driver} ours {common} --regressor-dtype bfloat16"
    cases = [Case(name, f"{command} --out {work / name}.npz", cwd=str(ROOT)) for name, command in sides.items()]
    records = paired_rounds(cases, args.rounds, after_run=lambda side, _: timings(np.load(work / f"{side}.npz")))
    keys = {
        "process_cpu_s": "whole process CPU s",
        "pipeline_cpu_s": "pipeline CPU s",
        "wall_s": "whole process wall s",
        "pipeline_s": "pipeline wall s",
        "peak_rss_mb": "peak RSS MB",
    }
    print(ratio_table(records, "reference", [s for s in sides if s != "reference"], keys))
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))
    reference = np.load(work / "reference.npz")
    for side in sides:
        if side != "reference":
            print(f"--- {side} against the reference")
            compare(reference, np.load(work / f"{side}.npz"), args.io_thres)


def timings(result: dict) -> dict:
    return {
        "pipeline_s": float(result["seconds"]),
        "pipeline_cpu_s": float(result["cpu_seconds"]),
        "process_cpu_s": float(result["process_cpu_seconds"]),
    }


def compare(reference: dict, ours: dict, io_thres: float) -> None:
    """Row by row (both keep the reference's coarse order): refined matches agreeing within 1e-3 px, the spread of
    the differences, and the matches each keeps at io_thres (all of them when none passes)."""
    a, b = reference["matches"], ours["matches"]
    print(f"coarse proposals refined: reference {len(a)}, ours {len(b)}")
    if len(a) != len(b):
        print("different numbers of coarse proposals: the matches are not identical")
        return
    difference = np.abs(a - b).max(axis=1) if len(a) else np.zeros(0)
    score_difference = np.abs(reference["scores"] - ours["scores"])
    kept = [
        (s > io_thres) if (s > io_thres).any() else np.ones_like(s, bool) for s in (reference["scores"], ours["scores"])
    ]
    print(
        f"identical refined matches (< 1e-3 px): {int((difference < 1e-3).sum())} / {len(a)}; within 0.5 px "
        f"{int((difference < 0.5).sum())}, within 1 px {int((difference < 1).sum())}; |match difference| median "
        f"{np.median(difference) if len(a) else 0:.2e}, max {difference.max(initial=0):.2e} px; max |probability "
        f"difference| {score_difference.max(initial=0):.2e}"
    )
    common = kept[0] & kept[1]
    print(
        f"kept at io_thres {io_thres}: reference {int(kept[0].sum())}, ours {int(kept[1].sum())}, in common "
        f"{int(common.sum())} (of which within 1 px {int((common & (difference < 1)).sum())}), decided differently "
        f"{int((kept[0] != kept[1]).sum())}"
    )


if __name__ == "__main__":
    main()
