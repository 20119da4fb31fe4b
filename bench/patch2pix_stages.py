"""Where Patch2Pix inference spends its time: CPU seconds per stage (backbone, coarse proposals, mid and fine
regression) of the authors' code and of ours on one pair, single-threaded so CPU time is the work done even on a
loaded machine; each side in a fresh process, from the same official-format weights.

    python -m bench.patch2pix_stages --reference /tmp/ref_p2p --images A.jpg B.jpg --weights W.pth --max-side 1024

The weights come from bench/patch2pix_matching.py (it prints their path; or `python -m bench.patch2pix_driver
weights ...`).  --regressor-dtype bfloat16 times our opt-in bfloat16 regressors.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


class StageClock:
    """Accumulated CPU seconds per stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.total = 0.0  # the matching call (construction and weight loading excluded)

    def wrap(self, owner, attribute: str, stage: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            start = time.process_time()
            result = original(*args, **kwargs)
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.process_time() - start
            return result

        setattr(owner, attribute, timed)


def reference_stages(args, images, clock: StageClock) -> int:
    import networks.patch2pix as patch2pix

    from bench.patch2pix_driver import normalize, reference_network

    net = reference_network(args.reference)
    net.load_state_dict(torch.load(args.weights, weights_only=False)["state_dict"])
    net.eval()
    clock.wrap(net.extract, "forward_all", "backbone (both images)")
    clock.wrap(net, "forward_coarse_match", "coarse: correlation, max-pool, NCNet")
    clock.wrap(patch2pix, "select_local_patch_feats", "regressor input (patches)")
    clock.wrap(net, "forward_fine_match", "mid + fine regression (incl. patches)")
    start = time.process_time()
    with torch.no_grad():
        _, _, coarse = net.predict_fine(*normalize(images), ksize=2, ncn_thres=0.0, mutual=True)
    clock.total = time.process_time() - start
    return len(coarse[0])


def our_stages(args, images, clock: StageClock) -> int:
    import corrlab.models.patch2pix.refinement as refinement
    import corrlab.modules.patch2pix as module_file
    from corrlab.models.patch2pix.network import Patch2PixNet

    module = module_file.Patch2Pix(io_thres=0.0, max_side=args.max_side, regressor_dtype=args.regressor_dtype)
    module.load_official(args.weights)
    module.eval()
    clock.wrap(Patch2PixNet, "features", "backbone (both images)")
    clock.wrap(module_file, "coarse_proposals", "coarse: correlation, max-pool, NCNet")
    clock.wrap(refinement, "pair_patches", "regressor input (patches)")
    clock.wrap(module, "regress", "mid + fine regression (incl. patches)")
    start = time.process_time()
    matches = module.match({"image0": images[0], "image1": images[1]})
    clock.total = time.process_time() - start
    return len(matches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=["reference", "ours"])
    parser.add_argument("--reference", type=Path, required=True, help="checkout of GrumpyZhou/patch2pix")
    parser.add_argument("--images", nargs=2, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--regressor-dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args()
    if args.side is None:
        for side in ("reference", "ours"):
            subprocess.run([sys.executable, "-m", "bench.patch2pix_stages", "--side", side, *sys.argv[1:]], check=True)
        return
    from bench.patch2pix_driver import import_reference, load_pair

    torch.set_num_threads(1)
    if args.side == "reference":
        import_reference(args.reference)
    images = load_pair(args.images, args.max_side)
    clock = StageClock()
    count = (reference_stages if args.side == "reference" else our_stages)(args, images, clock)
    total = clock.total
    print(f"{args.side} ({count} matches): matching {total:.2f} CPU s, 1 thread")
    for stage, seconds in clock.seconds.items():
        print(f"  {stage:40s} {seconds:6.2f} s ({100 * seconds / total:.0f} %)")


if __name__ == "__main__":
    main()
