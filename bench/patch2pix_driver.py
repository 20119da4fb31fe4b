"""One side of bench/patch2pix_matching.py, run in its own process: matches of one image pair with the authors'
Patch2Pix code (a checkout given by --reference, patched at run time to run on a CPU: NCNet's hard .cuda() and
the ImageNet download are bypassed) or with ours, from the same official-format weights.  Both get the same
network-size images (PIL bicubic, as the reference loads them); all refined matches (before the io threshold), timings and peak memory go to --out."""

from __future__ import annotations

import argparse
import resource
import sys
import time
import types
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def load_pair(paths: list[str], max_side: int) -> list[torch.Tensor]:
    """RGB images in [0, 1] (1, 3, h, w) at Patch2Pix's network size (longer side <= max_side, sides // 16)."""
    from corrlab.models.patch2pix.input_size import network_size

    images = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        h, w = network_size(image.height, image.width, max_side)
        image = image.resize((w, h), Image.BICUBIC)
        images.append(torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None])
    return images


def import_reference(checkout: Path):
    """The authors' Patch2Pix class, runnable on a CPU without downloads."""
    sys.path.insert(0, str(checkout))
    for name in ("transforms3d", "transforms3d.quaternions"):  # only imported by their dataset helpers
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["transforms3d.quaternions"].quat2mat = sys.modules["transforms3d.quaternions"].mat2quat = None
    import networks.ncn.model as ncn_model
    import networks.resnet as resnet

    resnet.ResNet.load_pretrained_ = lambda self, ignore="fc": None
    defaults = list(ncn_model.NeighConsensus.__init__.__defaults__)
    defaults[0] = False  # use_cuda
    ncn_model.NeighConsensus.__init__.__defaults__ = tuple(defaults)
    from networks.patch2pix import Patch2Pix

    return Patch2Pix


def reference_network(checkout: Path, regressors: bool = True, training: bool = False):
    Patch2Pix = import_reference(checkout)
    from corrlab.models.patch2pix.official import released_regressor_config

    regressor_config = released_regressor_config(anchors=8 if training else 1)  # its constructor resets feat_dim
    config = Namespace(
        training=training,
        device=torch.device("cpu"),
        regr_batch=1200,
        backbone="ResNet34",
        feat_idx=[0, 1, 2, 3],
        weights_dict=None,
        regressor_config=regressor_config if regressors else None,
        change_stride=True,
        freeze_feat=87,
        start_epoch=0,
        optim_config=Namespace(
            opt="adam", lr_init=5e-4, weight_decay=0, lr_decay=None, optimizer_dict=None, lr_scheduler_dict=None
        ),
    )
    return Patch2Pix(config)


def write_weights(checkout: Path, out: Path, images: list[torch.Tensor], seed: int, init: str) -> None:
    """Random weights saved as patch2pix_pretrained.pth.  'xavier': the reference's own seeded initialisation (few,
    degenerate proposals: the setting of the issue's CPU figures).  'calibrated': that, plus a centre-heavy
    consensus filter and every BatchNorm's running statistics set to those of this pair, so features, proposals and
    regressed offsets spread out like a trained network's."""
    torch.manual_seed(seed)
    net = reference_network(checkout)
    if init == "xavier":
        torch.save(
            {
                "state_dict": net.state_dict(),
                "backbone": "ResNet34",
                "feat_idx": [0, 1, 2, 3],
                "change_stride": True,
                "regressor_config": net.regressor_config,
            },
            out,
        )
        return
    with torch.no_grad():
        for conv in (net.ncn.conv[0], net.ncn.conv[2]):  # weights stored (S, Co, Ci, S, S, S)
            conv.weight.normal_(0, 0.01)
            conv.weight[1, :, :, 1, 1, 1] += 1.0
        norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for module in norms:
            module.reset_running_stats()
            module.momentum = None
        net.train()
        net.predict_fine(*normalize(images), ksize=2, ncn_thres=0.0, mutual=True)
        for module in norms:
            module.momentum = 0.1
    torch.save(
        {
            "state_dict": net.state_dict(),
            "backbone": "ResNet34",
            "feat_idx": [0, 1, 2, 3],
            "change_stride": True,
            "regressor_config": net.regressor_config,
        },
        out,
    )


def normalize(images: list[torch.Tensor]) -> list[torch.Tensor]:
    return [
        (image - torch.from_numpy(MEAN).reshape(1, 3, 1, 1)) / torch.from_numpy(STD).reshape(1, 3, 1, 1)
        for image in images
    ]


def run_reference(args, images) -> dict:
    net = reference_network(args.reference)
    net.load_state_dict(torch.load(args.weights, weights_only=False)["state_dict"])
    net.eval()
    start, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        fine, scores, coarse = net.predict_fine(*normalize(images), ksize=2, ncn_thres=0.0, mutual=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "matches": fine[0].reshape(-1, 4).numpy(),
        "scores": scores[0].reshape(-1).numpy(),
        "coarse": coarse[0].numpy(),
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def run_ours(args, images) -> dict:
    from corrlab.modules.patch2pix import Patch2Pix

    # every refined match; the threshold is applied after
    module = Patch2Pix(io_thres=0.0, max_side=args.max_side, regressor_dtype=args.regressor_dtype)
    module.load_official(args.weights)
    module.eval()
    start, cpu = time.perf_counter(), time.process_time()
    matches = module.match({"image0": images[0], "image1": images[1]})
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "matches": torch.cat([matches.kpts0, matches.kpts1], 1).numpy(),
        "scores": matches.scores.numpy(),
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("side", choices=["weights", "reference", "ours"])
    parser.add_argument("--reference", type=Path, help="checkout of GrumpyZhou/patch2pix")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--images", nargs=2)
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--io-thres", type=float, default=0.25)
    parser.add_argument("--init", choices=["calibrated", "xavier"], default="calibrated")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--regressor-dtype", choices=["float32", "bfloat16"], default="float32", help="ours only")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images = load_pair(args.images, args.max_side)
    if args.side == "weights":
        write_weights(args.reference, args.weights, images, seed=0, init=args.init)
        return
    result = (run_reference if args.side == "reference" else run_ours)(args, images)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["process_cpu_seconds"] = usage.ru_utime + usage.ru_stime  # imports and start-up included
    np.savez(args.out, **result)
    print(
        f"{args.side}: {len(result['matches'])} refined matches in {result['seconds']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
