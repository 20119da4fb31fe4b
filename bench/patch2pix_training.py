"""Patch2Pix training throughput (pairs/s) and peak memory: the authors' training step (their `train_epoch`, from a
checkout given by --reference, patched at run time for a CPU) against ours, with and without checkpointed
regressors, on the same batches of the MegaDepth test fixture (480 x 320 posed pairs), each in a fresh process, in
interleaved rounds (median of the per-round ratios).

    python -m bench.patch2pix_training --reference /tmp/ref_p2p --batches 2 --batch-size 2 --proposals 16 --rounds 3
    python -m bench.patch2pix_training --reference /tmp/ref_p2p --batches 1 --batch-size 1 --proposals 150 --regr-batch 300
    python -m bench.patch2pix_training --reference /tmp/ref_p2p --batches 1 --batch-size 1 --proposals 400 --rounds 3

Epipolar label thresholds are raised (both sides) so that no pair is skipped and both do the same work.  The
reference's NCNet parameters are frozen at run time: they receive no gradient in its training (proposals come from
argmax indices), and left trainable its Conv4d fails under torch 2 (in-place write into a leaf requiring grad).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import torch

from bench.paired_runs import paired_rounds, ratio_table
from bench.runner import Case

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = [5000, 5000]


def batches(root: Path, count: int, batch_size: int) -> list[dict]:
    from corrlab.datamodules.megadepth import MegaDepthDataModule

    datamodule = MegaDepthDataModule(
        root=str(root), batch_size=batch_size, pairs_per_scene=None, train_resize={"mode": "fixed", "size": [320, 480]}
    )
    loader = iter(datamodule.train_dataloader())
    return [next(loader) for _ in range(count)]


def run_reference(args, data: list[dict]) -> float:
    from bench.patch2pix_driver import import_reference, normalize, reference_network

    import_reference(args.reference)
    import train_patch2pix
    from networks.utils import sampson_dist
    from utils.train.helper import get_visdom_plots

    from corrlab.geometry.epipolar import fundamental_from_pose

    train_patch2pix.get_gpu_mem = lambda: (0.0, 0.0)  # memory logging needs a GPU and psutil
    train_patch2pix.get_sys_mem = lambda: (0.0, 0.0)
    torch.manual_seed(0)
    net = reference_network(args.reference, training=True)
    for parameter in net.ncn.parameters():  # they get no gradient anyway; trainable, NCNet's Conv4d fails on torch 2
        parameter.requires_grad_(False)
    net.geo_dist_fn = sampson_dist
    loader = [
        {
            "src_im": torch.cat(normalize([b["image0"]])),
            "pos_im": torch.cat(normalize([b["image1"]])),
            "F": torch.stack([fundamental_from_pose(k0, k1, t) for k0, k1, t in zip(b["K0"], b["K1"], b["T_0to1"])]),
        }
        for b in data
    ]
    net.regr_batch = args.regr_batch
    settings = Namespace(
        panc=8,
        ksize=2,
        cthres=0.5,
        cls_dthres=THRESHOLDS,
        epi_dthres=THRESHOLDS,
        weight_cls=10.0,
        weight_epi=[1, 1],
        ptmax=args.proposals,
        plot_counts=1,
    )
    vis = get_visdom_plots(prefix="train", env="bench", server=None)
    start = time.perf_counter()
    train_patch2pix.train_epoch(0, net, loader, vis, settings, lambda message: None)
    return time.perf_counter() - start


def run_ours(args, data: list[dict]) -> float:
    from corrlab.losses.patch2pix import Patch2PixLoss
    from corrlab.modules.patch2pix import Patch2Pix

    torch.manual_seed(0)
    module = Patch2Pix(
        proposals=args.proposals,
        regr_batch=args.regr_batch,
        checkpoint_regressors=args.side == "ours-checkpoint",
        loss=Patch2PixLoss(cls_thresholds=THRESHOLDS, epi_thresholds=THRESHOLDS),
    )
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.write_text(
        json.dumps(
            {"side": args.side, "pairs": pairs, "seconds": seconds, "pairs_per_s": pairs / seconds, "peak_rss_mb": peak}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=["reference", "ours", "ours-checkpoint"])
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--fixture", type=Path)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--proposals", type=int, default=16)
    parser.add_argument("--regr-batch", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each side once per round)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.side:
        side_main(args)
        return
    sys.path.insert(0, str(ROOT))
    from tests.helpers.megadepth_fixture import write_megadepth

    work = Path(tempfile.mkdtemp(prefix="p2p_train_bench_"))
    fixture = write_megadepth(work / "megadepth")
    common = f"--fixture {fixture} --batches {args.batches} --batch-size {args.batch_size} --proposals {args.proposals} --regr-batch {args.regr_batch}"
    command = f"{sys.executable} -m bench.patch2pix_training {common} --reference {args.reference}"
    sides = ("reference", "ours", "ours-checkpoint")
    cases = [Case(side, f"{command} --side {side} --out {work / side}.json", cwd=str(ROOT)) for side in sides]
    # pairs/s of the training loop alone (start-up and data loading excluded), read back after each run
    throughput = lambda side, _: json.loads((work / f"{side}.json").read_text())  # noqa: E731
    records = paired_rounds(cases, args.rounds, after_run=throughput)
    keys = {"seconds": "training loop s", "wall_s": "whole process s", "peak_rss_mb": "peak RSS MB"}
    print(f"{records[0]['reference']['pairs']} pairs per run; ratios = reference / side (higher: faster, lighter)")
    print(ratio_table(records, "reference", list(sides[1:]), keys))
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
