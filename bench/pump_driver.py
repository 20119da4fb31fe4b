"""One side of bench/pump_matching.py in this process, timing the matching pipeline without interpreter
and library start-up: the reference's `Main().run_from_args` (its own script's entry point) or our CLI's
`main`, from reading the weights and images to writing the npz.  Writes {"pipeline_s": ...} to <timing.json>.

    python -m bench.pump_driver test_singlescale /tmp/ref_pump t.json --img1 a.jpg --img2 b.jpg --resize 256 --device cpu --desc X --output o.npz
    python -m bench.pump_driver ours - t.json --img1 a.jpg --img2 b.jpg --resize 256 --weights X.pt --output o.npz

The first argument is `ours` or the reference's script to run (test_singlescale, test_multiscale,
test_singlescale_recursive).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run_reference(script: str, checkout: Path, argv: list[str]) -> float:
    os.chdir(checkout)
    sys.path.insert(0, str(checkout))
    module = importlib.import_module(script)  # the reference's script, from its checkout

    args = module.arg_parser().parse_args(argv)
    # its recursive mode centres a window on a random coarse match (np.random.choice) when the median one misses
    # them all: seeded, so that a run repeats (with seed 0 the demo pair shrunk 4x gets our 46 windows)
    np.random.seed(0)
    start = time.perf_counter()
    module.Main().run_from_args(args)
    return time.perf_counter() - start


def run_ours(argv: list[str]) -> float:
    sys.path.insert(0, str(ROOT))
    from corrlab.models.pump import cli

    start = time.perf_counter()
    cli.main(argv)
    return time.perf_counter() - start


def main() -> None:
    side, checkout, timing, *argv = sys.argv[1:]
    timing = Path(timing).resolve()
    seconds = run_ours(argv) if side == "ours" else run_reference(side, Path(checkout), argv)
    timing.write_text(json.dumps({"pipeline_s": seconds}))


if __name__ == "__main__":
    main()
