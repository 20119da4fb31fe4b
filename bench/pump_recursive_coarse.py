"""PUMP's recursive mode fed the reference's own coarse correspondences: separates what its coarse pass changes
(float32 reciprocity keys that let non-reciprocal rows through) from the tile stage, against the reference's output;
then the reference's own window search (it draws from numpy's RNG) and its own reciprocity test applied to our
tile stage's cells.

    python -m bench.pump_driver test_singlescale /tmp/ref_pump t.json --img1 A --img2 B --resize 0 --device cpu \
        --desc corrlab_random --output ref_coarse.npz
    python -m bench.pump_driver test_singlescale_recursive /tmp/ref_pump t.json --img1 A --img2 B --resize 400 128 \
        --device cpu --desc corrlab_random --output ref.npz
    python -m bench.pump_recursive_coarse --img1 A --img2 B --weights /tmp/ref_pump/checkpoints/corrlab_random.pt \
        --coarse-size 400 --fine-size 128 --reference-coarse ref_coarse.npz --reference ref.npz --checkout /tmp/ref_pump

With images no larger than --coarse-size neither side resizes before its coarse pass, so both coarse passes see
the same pixels (docs/pump.md, "Recursive").  bench/pump_driver seeds numpy's RNG (0) before the reference runs.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pump_matching import compare, load_corres  # noqa: E402
from corrlab.models.convmixer import ConvMixer  # noqa: E402
from corrlab.models.pump.cli import load_image  # noqa: E402
from corrlab.models.pump.modes import make_matcher  # noqa: E402
from corrlab.safe_loading import torch_load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("--img1", "--img2", "--weights", "--reference-coarse", "--reference", "--checkout"):
        parser.add_argument(name, type=Path, required=True)
    parser.add_argument("--coarse-size", type=int, required=True)
    parser.add_argument("--fine-size", type=int, required=True)
    parser.add_argument("--level0", default="conv", help="conv: the reference's summation order")
    args = parser.parse_args()
    net = ConvMixer()
    net.load_state_dict(torch_load(args.weights, "--weights"), strict=True)
    matching = {
        "mode": "recursive",
        "coarse_size": args.coarse_size,
        "fine_size": args.fine_size,
        "level0": args.level0,
    }
    recursive = make_matcher(net.eval(), matching)
    image1, image2 = (
        load_image(str(p), {**matching, "resize": 0}, torch.device("cpu"))[0] for p in (args.img1, args.img2)
    )
    with torch.no_grad():
        ours_coarse = recursive.coarse(image1, image2)
    reference_coarse = torch.from_numpy(load_corres(args.reference_coarse)).float()
    reference_coarse = reference_coarse[reference_coarse[:, 4] > recursive.score_thr]
    print("coarse correspondences:", compare(reference_coarse.double().numpy(), ours_coarse.double().numpy(), 0))
    ours_blocks = list(recursive.blocks(image1, image2, ours_coarse))
    reference_blocks = list(recursive.blocks(image1, image2, reference_coarse))
    common = len(set(ours_blocks) & set(reference_blocks))
    print(
        f"(tile, window) pairs: {len(ours_blocks)} from ours, {len(reference_blocks)} from the reference's, {common} common"
    )
    recursive.coarse = lambda *_: reference_coarse
    with torch.no_grad():
        fed = recursive(image1, image2)
    reference = load_corres(args.reference)
    print("fed the reference's coarse:", compare(reference, fed.double().numpy(), 0))
    sys.path.insert(0, str(args.checkout))  # the reference's own window search and reciprocity test
    from core.functional import reciprocal
    from test_singlescale_recursive import RecursivePUMP

    options = types.SimpleNamespace(
        fine_size=recursive.fine_size, overlap=recursive.overlap, fast_thr=recursive.fast_thr
    )
    for seed in range(5):
        np.random.seed(seed)
        windows = [
            (int(t1[0, 2]), int(t1[1, 2]), int(t2[0, 2]), int(t2[1, 2]))
            for (_, t1), (_, t2) in RecursivePUMP._enumerate_blocks(options, image1, image2, reference_coarse)
        ]
        print(
            f"the reference's windows, numpy seed {seed}: {len(windows)},",
            f"{len(set(windows) & set(reference_blocks))} of them ours",
        )
    cells = [(a[..., :4].reshape(-1, 4), a[..., 4]) for a in recursive.accumulate(image1, image2, reference_coarse)]
    theirs = reciprocal(None, *cells).double().numpy()
    print("fed the reference's coarse, the reference's reciprocity test:", compare(reference, theirs, 0))


if __name__ == "__main__":
    main()
