"""Patch2Pix matching, the authors' code against ours side by side in one run, from the same random weights in
the official format: identical matches, wall time and peak memory of each (fresh process per run).

    python -m bench.patch2pix_matching --reference /tmp/ref_p2p --images A.jpg B.jpg --max-side 1024 --repeat 1

The reference checkout is not part of corrlab (GrumpyZhou/patch2pix, MIT); it is imported from --reference and
patched at run time to run on a CPU (bench/patch2pix_driver.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.runner import Case, run_cases

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout of GrumpyZhou/patch2pix")
    parser.add_argument("--images", nargs=2, required=True)
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--io-thres", type=float, default=0.25)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--weights", type=Path, help="reuse official-format weights written by an earlier run")
    parser.add_argument(
        "--init", choices=["calibrated", "xavier"], default="calibrated", help="see bench/patch2pix_driver.py"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="p2p_bench_"))
    weights = args.weights or work / "patch2pix_random.pth"
    driver = f"{sys.executable} -m bench.patch2pix_driver"
    common = f"--weights {weights} --images {args.images[0]} {args.images[1]} --max-side {args.max_side} --io-thres {args.io_thres}"
    if args.weights is None:
        run_cases(
            [
                Case(
                    "weights",
                    f"{driver} weights --init {args.init} --reference {args.reference} {common}",
                    cwd=str(ROOT),
                )
            ],
            baseline="weights",
            repeat=1,
        )
    print(f"weights: {weights}")
    cases = [
        Case(
            "reference",
            f"{driver} reference --reference {args.reference} {common} --out {work / 'reference.npz'}",
            cwd=str(ROOT),
        ),
        Case("ours", f"{driver} ours {common} --out {work / 'ours.npz'}", cwd=str(ROOT)),
    ]
    run_cases(cases, baseline="reference", repeat=args.repeat, json_path=args.json)
    reference, ours = np.load(work / "reference.npz"), np.load(work / "ours.npz")
    print(
        f"pipeline seconds (start-up excluded): reference {float(reference['seconds']):.2f}, ours {float(ours['seconds']):.2f}, "
        f"ratio {float(reference['seconds']) / float(ours['seconds']):.2f}x"
    )
    compare(reference, ours, args.io_thres)


def compare(reference: dict, ours: dict, io_thres: float) -> None:
    """Row by row (both keep the reference's coarse order): refined matches agreeing within 1e-3 px, and the
    matches each keeps at io_thres (all of them when none passes)."""
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
        f"identical refined matches (< 1e-3 px): {int((difference < 1e-3).sum())} / {len(a)}; max |match difference| "
        f"{difference.max(initial=0):.2e} px; max |probability difference| {score_difference.max(initial=0):.2e}"
    )
    print(
        f"kept at io_thres {io_thres}: reference {int(kept[0].sum())}, ours {int(kept[1].sum())}, "
        f"decided differently {int((kept[0] != kept[1]).sum())} (probabilities within {score_difference.max(initial=0):.0e} of the threshold)"
    )


if __name__ == "__main__":
    main()
