"""Resuming from a checkpoint written mid-epoch continues exactly: same losses, same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from corrlab.pipeline.train import train
from tests.helpers.training import csv_metric, step_checkpoints, tiny_run_config

STEPS = 6  # 4 batches per epoch: the run crosses an epoch boundary


def run(output_dir: Path, ckpt_path: Path | None = None) -> dict[str, torch.Tensor]:
    cfg = tiny_run_config(
        output_dir, f"trainer.max_steps={STEPS}", callbacks={"steps": step_checkpoints(output_dir / "steps")}
    )
    with open_dict(cfg):
        cfg.ckpt_path = str(ckpt_path) if ckpt_path else None
    train(cfg)
    return torch.load(output_dir / "steps" / f"step{STEPS:03d}.ckpt", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """STEPS steps without interruption, a checkpoint after each."""
    output_dir = tmp_path_factory.mktemp("straight")
    return output_dir, run(output_dir)


@pytest.mark.slow
def test_resume_mid_epoch_and_at_epoch_end_is_exact(straight_run, tmp_path):
    straight_dir, straight = straight_run
    straight_losses = csv_metric(straight_dir, "train/total")
    assert sorted(straight_losses) == list(range(STEPS))
    for resume_step in (3, 4):  # mid-epoch, and the last batch of epoch 0
        checkpoint = straight_dir / "steps" / f"step{resume_step:03d}.ckpt"
        assert torch.load(checkpoint, weights_only=False)["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
            {"epoch": 0, "batches": resume_step}
        ]
        resumed = run(tmp_path / f"resumed{resume_step}", checkpoint)
        resumed_losses = csv_metric(tmp_path / f"resumed{resume_step}", "train/total")
        assert resumed_losses == {s: v for s, v in straight_losses.items() if s >= resume_step}
        for name, value in straight.items():
            assert torch.equal(resumed[name], value), name


@pytest.mark.slow
def test_resume_without_the_loader_position_is_not_exact(straight_run, tmp_path):
    """Control: the same resume with the data-loader state removed from the checkpoint replays the
    epoch from its start, so the weights differ (the exactness above is not an accident)."""
    straight_dir, straight = straight_run
    checkpoint = torch.load(straight_dir / "steps" / "step003.ckpt", weights_only=False)
    del checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    torch.save(checkpoint, tmp_path / "no_loader_state.ckpt")
    resumed = run(tmp_path / "resumed", tmp_path / "no_loader_state.ckpt")
    assert not all(torch.equal(resumed[name], value) for name, value in straight.items())
