"""PUMP on one image pair from the command line, writing the reference's output format: an npz with
`corres` rows [x1, y1, x2, y2, score, scale_rot_code] in original-image pixels.

    python -m corrlab.models.pump.cli --img1 a.jpg --img2 b.jpg --weights PUMP.pt --resize 512 --output out.npz

Kept free of Lightning so that it starts fast (it is what bench/pump_matching.py times).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from corrlab.datamodules.image_io import read_image_array
from corrlab.models.convmixer import ConvMixer
from corrlab.models.pump.images import check_image_size, matcher_input
from corrlab.models.pump.matcher import apply_affine
from corrlab.models.pump.modes import MODES, make_matcher
from corrlab.models.pump.output import save_corres
from corrlab.models.pump.single_scale import LEVEL0
from corrlab.pipeline.memory import reuse_freed_memory
from corrlab.safe_loading import torch_load


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--img1", required=True)
    parser.add_argument("--img2", required=True)
    parser.add_argument(
        "--weights", required=True, help="official PUMP checkpoint (a ConvMixer state_dict, e.g. PUMP.pt)"
    )
    parser.add_argument("--resize", type=int, default=512, help="longer side of both images before matching (0: keep)")
    parser.add_argument("--output", required=True, help="npz written with key `corres`")
    parser.add_argument("--levels", type=int, default=99)
    parser.add_argument("--min-shape", type=int, default=5)
    parser.add_argument("--nlpow", type=float, default=1.5)
    parser.add_argument("--border", type=float, default=0.9)
    parser.add_argument("--mode", choices=MODES, default="single")
    parser.add_argument(
        "--level0",
        choices=LEVEL0,
        default="mm",
        help="level 0 as a matrix product (faster) or as the reference's 1x1 convolution (its rounding)",
    )
    parser.add_argument("--max-scale", type=float, default=4.0, help="multi: scales 2^(i/2) in [1/max, max]")
    parser.add_argument("--max-rot", type=float, default=0.0, help="multi: rotations in 45-degree steps within +-max")
    parser.add_argument("--fine-size", type=int, default=512, help="recursive: tile size (the coarse size is --resize)")
    parser.add_argument(
        "--post-filter", action="store_true", help="keep connected components of > 50 consistent matches"
    )
    parser.add_argument(
        "--densify", action="store_true", help="write dense rows [x1, y1, x2, y2] on image 1's original grid"
    )
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def load_image(path: str, matching: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, H, W) float image in [0, 1] resized like the reference (`matcher_input`, as PUMP.match), and its
    pixel -> original matrix."""
    image = torch.from_numpy(read_image_array(path)).permute(2, 0, 1).contiguous()
    image, back = matcher_input(image, matching)
    resized = f" (longer side resized to {matching['resize']})" if matching.get("resize") else ""
    check_image_size(*image.shape[-2:], f"image '{path}'{resized}")
    return image.to(device), back


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; bad input (an unreadable or too small image, a file that is no checkpoint) exits with
    its message (the traceback only with CORRLAB_TRACEBACK=1)."""
    try:
        run(parse_args(argv))
    except (ValueError, OSError) as error:
        if os.environ.get("CORRLAB_TRACEBACK") == "1":
            raise
        sys.exit(f"error: {error}")


def run(args: argparse.Namespace) -> None:
    reuse_freed_memory()
    device = torch.device(args.device)
    start = time.perf_counter()
    descriptor = ConvMixer()
    descriptor.load_state_dict(torch_load(args.weights, "--weights"), strict=True)
    matching = {
        "mode": args.mode,
        "levels": args.levels,
        "min_shape": args.min_shape,
        "power": args.nlpow,
        "border_norm": args.border,
        "level0": args.level0,
        "max_scale": args.max_scale,
        "max_rot": args.max_rot,
        "coarse_size": args.resize,
        "fine_size": args.fine_size,
    }
    matcher = make_matcher(descriptor.eval().to(device), matching)
    (image1, back1), (image2, back2) = (
        load_image(p, {**matching, "resize": args.resize}, device) for p in (args.img1, args.img2)
    )
    corres = matcher(image1, image2)
    corres = corres.double().cpu().numpy()
    if args.post_filter or args.densify:
        from corrlab.models.pump.post_filter import densify, filter_corres  # scipy: imported only when needed
    if args.post_filter:
        corres = filter_corres(corres)
    corres[:, 0:2] = apply_affine(back1, torch.from_numpy(corres[:, 0:2])).numpy()
    corres[:, 2:4] = apply_affine(back2, torch.from_numpy(corres[:, 2:4])).numpy()
    if args.densify:
        height, width = read_image_array(args.img1).shape[:2]
        dense, _ = densify(corres[:, 0:2], corres[:, 2:4], height, width)
        ys, xs = np.mgrid[0:height, 0:width]
        corres = np.concatenate([np.stack([xs, ys], -1).reshape(-1, 2), dense.reshape(-1, 2)], 1)
    save_corres(Path(args.output), corres)
    if device.type == "cuda":
        print(f"peak_cuda_bytes={torch.cuda.max_memory_allocated()}")
    print(f"{len(corres)} correspondences in {time.perf_counter() - start:.2f}s -> {args.output}")


if __name__ == "__main__":
    main()
