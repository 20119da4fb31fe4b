"""How close a method's matches stay under bf16 autocast on CPU: eval.py on the real HPatches pairs of
../shared/data/hpatches/partial_pairs at precision=32 and precision=bf16-mixed, then per pair the fraction of the fp32
matches that have a bf16 match within `--radius` px at both ends (and the reverse), and the MMA@3 of each run
(pairs resized to a longer side of `--long-side` px, for CPU time).  A method that fails under bf16 is reported
with its error.

    python -m bench.mixed_precision --out /tmp/mp r2d2 gcm pump patch2pix glunet

Methods without real weights here run with random weights (allow_random_weights): that measures how the
method's numerics react to bf16, not its accuracy.  Modules are allowed mixed precision for the measurement only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import torch

from corrlab.pipeline.evaluate import evaluate
from corrlab.pipeline.instantiate import instantiate_method
from tests.conftest import compose_config, shared_data

RUNS = {  # method -> eval overrides
    "r2d2": ["model=r2d2", f"weights={shared_data('weights/r2d2/r2d2_WASF_N16.pt')}"],
    "gcm": ["model=gcm", "model/gcm=avg_r2d2_95", f"weights={shared_data('weights/gcm/dstl_r2d2.pt')}"],
    "pump": ["model=pump", "allow_random_weights=true"],
    "patch2pix": ["model=patch2pix", "allow_random_weights=true"],
    "glunet": ["model=glunet", "allow_random_weights=true"],
}


def matches(path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """pair -> (kpts0, kpts1) of a run's predictions.h5."""
    with h5py.File(path) as handle:
        group = handle["match"]
        return {
            name: (torch.from_numpy(g["kpts0"][()]).float(), torch.from_numpy(g["kpts1"][()]).float())
            for name, g in group.items()
        }


def covered(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], radius: float) -> float:
    """Fraction of the matches a that b has within `radius` px at both ends."""
    if len(a[0]) == 0:
        return float("nan")
    if len(b[0]) == 0:
        return 0.0
    near = (torch.cdist(a[0], b[0]) <= radius) & (torch.cdist(a[1], b[1]) <= radius)
    return float(near.any(1).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("methods", nargs="+", choices=sorted(RUNS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--radius", type=float, default=1.0)
    parser.add_argument("--long-side", type=int, default=320, help="the pairs resized to this longer side (CPU time)")
    args = parser.parse_args()
    root = shared_data("hpatches", "partial_pairs")
    report = {}
    for method in args.methods:
        runs = {}
        for precision in ("32", "bf16-mixed"):
            folder = args.out / method / precision
            cfg = compose_config(
                "eval",
                [
                    *RUNS[method],
                    "data=hpatches",
                    f"data.root={root}",
                    f"data.resize={{mode:long,size:{args.long_side}}}",
                    "num_figures=0",
                    f"precision={precision}",
                ],
                folder,
            )
            cls = type(instantiate_method(cfg.model))
            allowed, cls.mixed_precision = cls.mixed_precision, True  # measured before it is declared
            try:
                summary = evaluate(cfg)
            except Exception as error:  # noqa: BLE001 - a method that fails under bf16 is a result to report
                report[method] = {"fails_under": precision, "error": f"{type(error).__name__}: {error}"}
                print(json.dumps({method: report[method]}))
                break
            finally:
                cls.mixed_precision = allowed
            runs[precision] = (summary, matches(folder / "predictions.h5"))
        if method in report:
            continue
        full, half = runs["32"][1], runs["bf16-mixed"][1]
        report[method] = {
            "pairs": {
                name: {
                    "fp32_matches": len(full[name][0]),
                    "bf16_matches": len(half[name][0]),
                    "fp32_in_bf16": covered(full[name], half[name], args.radius),
                    "bf16_in_fp32": covered(half[name], full[name], args.radius),
                }
                for name in sorted(full)
            },
            "mma@3": {p: runs[p][0]["metrics"]["mma@3"] for p in runs},
            "seconds": {p: runs[p][0].get("seconds") for p in runs},
        }
        print(json.dumps({method: report[method]}, indent=1))
    (args.out / "mixed_precision.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
