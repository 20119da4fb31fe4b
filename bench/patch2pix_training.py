"""Patch2Pix training throughput (pairs/s) and peak memory: the authors' training step (their `train_epoch`, from a
checkout given by --reference, patched at run time for a CPU) against ours, with and without checkpointed
regressors, on the same batches of the MegaDepth test fixture (480 x 320 posed pairs), each in a fresh process.

    python -m bench.patch2pix_training --reference /tmp/ref_p2p --batches 2 --batch-size 2 --proposals 16

Epipolar label thresholds are raised (both sides) so that no pair is skipped and both do the same work.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import torch

from bench.runner import Case, run_cases

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = [5000, 5000]


def batches(root: Path, count: int, batch_size: int) -> list[dict]:
    from src.datamodules.megadepth import MegaDepthDataModule

    datamodule = MegaDepthDataModule(root=str(root), batch_size=batch_size, pairs_per_scene=None)
    loader = iter(datamodule.train_dataloader())
    return [next(loader) for _ in range(count)]


def run_reference(args, data: list[dict]) -> float:
    from bench.patch2pix_driver import import_reference, normalize, reference_network

    import_reference(args.reference)
    import train_patch2pix
    from networks.utils import sampson_dist
    from src.geometry.epipolar import fundamental_from_pose
    from utils.train.helper import get_visdom_plots

    train_patch2pix.get_gpu_mem = lambda: (0.0, 0.0)
    torch.manual_seed(0)
    net = reference_network(args.reference, training=True)
    net.geo_dist_fn = sampson_dist
    loader = [
        {"src_im": torch.cat(normalize([b["image0"]])), "pos_im": torch.cat(normalize([b["image1"]])),
         "F": torch.stack([fundamental_from_pose(k0, k1, t) for k0, k1, t in zip(b["K0"], b["K1"], b["T_0to1"])])}
        for b in data
    ]  # fmt: skip
    settings = Namespace(panc=8, ksize=2, cthres=0.5, cls_dthres=THRESHOLDS, epi_dthres=THRESHOLDS, weight_cls=10.0,
                         weight_epi=[1, 1], ptmax=args.proposals, plot_counts=1)  # fmt: skip
    vis = get_visdom_plots(prefix="train", env="bench", server=None)
    start = time.perf_counter()
    train_patch2pix.train_epoch(0, net, loader, vis, settings, lambda message: None)
    return time.perf_counter() - start


def run_ours(args, data: list[dict]) -> float:
    from src.losses.patch2pix import Patch2PixLoss
    from src.modules.patch2pix import Patch2Pix

    torch.manual_seed(0)
    module = Patch2Pix(proposals=args.proposals, checkpoint_regressors=args.side == "ours-checkpoint",
                       loss=Patch2PixLoss(cls_thresholds=THRESHOLDS, epi_thresholds=THRESHOLDS))  # fmt: skip
    module.train()
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=5e-4)
    start = time.perf_counter()
    for batch in data:
        optimizer.zero_grad()
        module.compute_losses(batch)["total"].backward()
        optimizer.step()
    return time.perf_counter() - start


def side_main(args) -> None:
    data = batches(args.fixture, args.batches, args.batch_size)
    seconds = (run_reference if args.side == "reference" else run_ours)(args, data)
    pairs = args.batches * args.batch_size
    print(f"{args.side}: {pairs} pairs in {seconds:.2f} s = {pairs / seconds:.3f} pairs/s, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=["reference", "ours", "ours-checkpoint"])
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--fixture", type=Path)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--proposals", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.side:
        side_main(args)
        return
    sys.path.insert(0, str(ROOT))
    from tests.helpers.megadepth_fixture import write_megadepth

    fixture = write_megadepth(Path(tempfile.mkdtemp(prefix="p2p_train_bench_")))
    common = f"--fixture {fixture} --batches {args.batches} --batch-size {args.batch_size} --proposals {args.proposals}"
    command = f"{sys.executable} -m bench.patch2pix_training {common} --reference {args.reference}"
    cases = [Case(side, f"{command} --side {side}", cwd=str(ROOT)) for side in ("reference", "ours", "ours-checkpoint")]
    run_cases(cases, baseline="reference", repeat=1, json_path=args.json)


if __name__ == "__main__":
    main()
