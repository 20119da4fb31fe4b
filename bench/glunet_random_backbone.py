"""Does GLU-Net's frozen VGG-16 carry a matching signal without its ImageNet weights?  On the held-out synthetic
pairs, the flow read off the hard argmax of the global correlation of L2-normalised VGG features (no decoder, no
training) against the zero-flow EPE, at the 16 x 16 (pool4, GLU-Net's global level) and 32 x 32 (pool3) grids of the
256 x 256 images.

    python bench/glunet_random_backbone.py [--weights vgg16-397923af.pth] [--pairs 16]

An EPE near or above the zero-flow EPE means the decoders see no usable correlation peak: they can only learn the
mean motion, whatever the learning rate."""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from corrlab.datamodules.synthetic_flow import SyntheticFlowDataModule
from corrlab.models.glunet.glunet import feature_l2norm, preprocess_pair
from corrlab.models.glunet.vgg_pyramid import VGGPyramid


def argmax_flow(target_feat, source_feat, image_size: int) -> torch.Tensor:
    """(2, h, w) flow in image pixels from each target cell to its most correlated source cell (cell centres)."""
    t, s = feature_l2norm(target_feat)[0].flatten(1), feature_l2norm(source_feat)[0].flatten(1)  # (C, hw)
    h, w = target_feat.shape[-2:]
    best = (t.T @ s).argmax(dim=1)  # target cell -> source cell
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    cell = image_size / w
    sx, sy = best % w, best // w
    return torch.stack([(sx - xs.flatten()).view(h, w), (sy - ys.flatten()).view(h, w)]).float() * cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="torchvision's vgg16-397923af.pth (default: random, seed 42)")
    parser.add_argument("--pairs", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(42)
    pyramid = VGGPyramid().eval()
    if args.weights:
        pyramid.load_imagenet(args.weights, key="--weights")
    data = SyntheticFlowDataModule(num_val_pairs=args.pairs)
    results = {level: {"argmax": [], "zero": []} for level in ("pool4_16x16", "pool3_32x32")}
    with torch.no_grad():
        for sample in data.dataset("val"):
            _, _, src_256, tgt_256, _, _ = preprocess_pair(sample["image1"][None], sample["image0"][None])
            ft, fs = pyramid(tgt_256, levels=5), pyramid(src_256, levels=5)
            gt = sample["flow"].permute(2, 0, 1)[None]
            valid = sample["flow_valid"][None, None].float()
            for level, index in (("pool4_16x16", 4), ("pool3_32x32", 3)):
                size = tuple(ft[index].shape[-2:])
                gt_cells = F.interpolate(gt, size, mode="bilinear", align_corners=False)[0]
                valid_cells = F.interpolate(valid, size, mode="bilinear", align_corners=False)[0, 0] >= 1.0
                flow = argmax_flow(ft[index], fs[index], 256)
                results[level]["argmax"].append(float((flow - gt_cells).norm(dim=0)[valid_cells].mean()))
                results[level]["zero"].append(float(gt_cells.norm(dim=0)[valid_cells].mean()))
    report = {
        "backbone": args.weights or "random (torchvision init, seed 42)",
        "pairs": args.pairs,
        **{
            level: {k: sum(v) / len(v) for k, v in (("argmax_aepe", r["argmax"]), ("zero_flow_aepe", r["zero"]))}
            for level, r in results.items()
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
