"""Our R2D2 extraction as a command with extract.py's inputs and outputs, for side-by-side runs.

    python bench/r2d2_driver.py --model r2d2_WASF_N16.pt --images a.ppm b.png --tag ours

writes `<image>.<tag>` (npz: imsize, keypoints (x, y, 32/s), descriptors, scores) like extract.py, with
the same defaults (--top-k 5000, --min-size 256, --max-size 1024, thresholds 0.7).  --streamed runs
`model.streamed=true` (each level through the folded trunk by chunks of rows).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corrlab.datamodules.image_io import read_image  # noqa: E402
from corrlab.models.r2d2.checkpoint import load_official  # noqa: E402
from corrlab.models.r2d2.extract import ExtractionConfig, extract_keypoints  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--tag", default="ours")
    parser.add_argument("--top-k", type=int, default=5000)
    parser.add_argument("--min-size", type=int, default=256)
    parser.add_argument("--max-size", type=int, default=1024)
    parser.add_argument("--streamed", action="store_true")
    args = parser.parse_args()
    net = load_official(args.model)
    config = ExtractionConfig(top_k=args.top_k, min_size=args.min_size, max_size=args.max_size)
    for path in args.images:
        image = read_image(path)
        start = time.perf_counter()
        keypoints = extract_keypoints(net, image, config, args.streamed)
        print(f"{path}: {len(keypoints)} keypoints in {time.perf_counter() - start:.2f} s")
        with open(f"{path}.{args.tag}", "wb") as handle:
            np.savez(
                handle,
                imsize=(image.shape[2], image.shape[1]),
                keypoints=keypoints.xys.numpy(),
                descriptors=keypoints.descriptors.numpy(),
                scores=keypoints.scores.numpy(),
            )


if __name__ == "__main__":
    main()
