"""Held-out EPE of a dense flow method before and after its short synthetic-flow schedule, with the zero-flow EPE of
the same pairs as the floor a network that learned only the mean motion would reach.

    python bench/dense_flow_training.py --model pwcnet [--steps N] [--override key=value ...]

Composes train.yaml with model=<model> data=synthetic_flow (so conf/schedule/<model>_synthetic_flow.yaml applies),
trains with the module's own compute_losses, optimizer and lr scheduler (stepped per step or per epoch, as
`scheduler_interval` says) on fresh pairs every epoch (as train.py: the sampler's set_epoch) for the schedule's steps
(or --steps), and scores the val pairs as the synthetic_dense benchmark does (per-image mean EPE over valid pixels, then
mean over images)."""

from __future__ import annotations

import argparse
import json
import time

import hydra
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from corrlab.config.schema import CONFIG_DIR, register_configs
from corrlab.pipeline.instantiate import instantiate_method


def held_out_epe(module, pairs) -> dict[str, float]:
    """Per-image mean EPE of the module's flow and of zero flow at the valid pixels, averaged over the pairs."""
    module.eval()
    model, zero = [], []
    with torch.no_grad():
        for sample in pairs:
            flow = module.estimate_flow(sample["image1"][None], sample["image0"][None])[0].permute(1, 2, 0)
            valid = sample["flow_valid"]
            model.append(float((flow - sample["flow"])[valid].norm(dim=-1).mean()))
            zero.append(float(sample["flow"][valid].norm(dim=-1).mean()))
    return {"aepe": sum(model) / len(model), "zero_flow_aepe": sum(zero) / len(zero)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=["glunet", "glunet_gocor", "pwcnet", "pwcnet_gocor"])
    parser.add_argument("--steps", type=int, default=None, help="default: the schedule's epochs x train pairs / batch")
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides, e.g. model.optimizer.lr=1e-3")
    parser.add_argument("--log-every", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=0, help="also score the val pairs every N steps")
    args = parser.parse_args()

    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={args.model}", "data=synthetic_flow", *args.override])
    torch.manual_seed(cfg.seed)
    data = hydra.utils.instantiate(cfg.data, benchmark=None, _convert_="all")
    module = instantiate_method(cfg.model)
    steps_per_epoch = cfg.data.num_train_pairs // cfg.data.batch_size
    steps = args.steps or cfg.trainer.max_epochs * steps_per_epoch
    val = [data.dataset("val")[i] for i in range(len(data.dataset("val")))]

    before = held_out_epe(module, val)
    optimizer, scheduler, interval = module.configure_optimizers(), None, "epoch"
    if isinstance(optimizer, dict):
        scheduler, interval = optimizer["lr_scheduler"]["scheduler"], optimizer["lr_scheduler"]["interval"]
        optimizer = optimizer["optimizer"]
    loader = data.train_dataloader()
    losses, curve, start = [], [], time.perf_counter()
    for step in range(steps):
        if step % steps_per_epoch == 0:
            loader.sampler.set_epoch(step // steps_per_epoch)
            batches = iter(loader)
        module.train()
        loss = module.compute_losses(next(batches))["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None and (interval == "step" or (step + 1) % steps_per_epoch == 0):
            scheduler.step()
        losses.append(loss.item())
        if step % args.log_every == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {losses[-1]:10.3f}  ({time.perf_counter() - start:.0f} s)", flush=True)
        if args.eval_every and (step + 1) % args.eval_every == 0 and step + 1 < steps:
            curve.append((step + 1, held_out_epe(module, val)["aepe"]))
            print(f"step {step + 1:4d}  held-out AEPE {curve[-1][1]:.3f}", flush=True)
    after = held_out_epe(module, val)
    report = {
        "model": args.model,
        "overrides": args.override,
        "steps": steps,
        "batch_size": cfg.data.batch_size,
        "lr": cfg.model.optimizer.lr,
        "scheduler": OmegaConf.to_container(cfg.model.scheduler) if cfg.model.scheduler else None,
        "image_size": list(cfg.data.image_size),
        "val_pairs": len(val),
        "zero_flow_aepe": before["zero_flow_aepe"],
        "aepe_before": before["aepe"],
        "aepe_after": after["aepe"],
        "aepe_curve": curve,
        "loss_first_8": sum(losses[:8]) / len(losses[:8]),
        "loss_last_8": sum(losses[-8:]) / len(losses[-8:]),
        "train_seconds": time.perf_counter() - start,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
