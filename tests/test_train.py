"""Training loop end to end with the test-only tiny matcher: run-dir artefacts, resume."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from corrlab.pipeline.train import train
from tests.helpers.training import csv_metric


def test_fast_dev_run(train_cfg):
    with open_dict(train_cfg):
        train_cfg.trainer.fast_dev_run = True
    metrics = train(train_cfg)
    assert "val/mma@3" in metrics and "val/score" in metrics
    assert 0.0 <= metrics["val/mma@3"] <= 1.0


def test_train_writes_run_artifacts(train_cfg):
    metrics = train(train_cfg)
    out = Path(train_cfg.paths.output_dir)
    assert (out / "config.yaml").is_file()
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics)
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "figures" / "val_matches.png").stat().st_size > 1000
    assert (out / "csv" / "metrics.csv").is_file()


FINAL: dict[str, torch.Tensor] = {}


class FinalWeights(L.Callback):
    """Test-only: the module's weights when training ends, in FINAL."""

    def on_train_end(self, trainer, pl_module):
        FINAL.clear()
        FINAL.update({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


def with_final_weights(cfg):
    with open_dict(cfg):
        cfg.callbacks.final_weights = OmegaConf.create({"_target_": f"{__name__}.FinalWeights"})
    return cfg


def assert_is_final_state(checkpoint: dict, global_step: int) -> None:
    assert checkpoint["global_step"] == global_step
    assert FINAL and all(torch.equal(checkpoint["state_dict"][k], v) for k, v in FINAL.items())


def test_last_checkpoint_is_the_final_state_when_the_score_stops_improving(train_cfg):
    """lr 0 keeps val/score constant after epoch 0: Lightning's save_last rewrote last.ckpt only with a new best."""
    with open_dict(train_cfg):
        train_cfg.trainer.max_epochs = 3
        train_cfg.model.optimizer.lr = 0.0
    train(with_final_weights(train_cfg))
    checkpoints = Path(train_cfg.paths.output_dir) / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=False)
    assert_is_final_state(last, 6) and last["epoch"] == 2
    assert torch.load(checkpoints / "epoch000.ckpt", weights_only=False)["global_step"] == 2  # the best: epoch 0


def test_resume_continues_from_checkpoint(train_cfg):
    train(train_cfg)
    out = Path(train_cfg.paths.output_dir)
    last = out / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 2
    resumed_dir = out / "resumed"
    with open_dict(train_cfg):
        train_cfg.ckpt_path = str(last)
        train_cfg.trainer.max_epochs = 3
        train_cfg.trainer.log_every_n_steps = 1
        train_cfg.paths.output_dir = str(resumed_dir)
    train(with_final_weights(train_cfg))
    assert sorted(csv_metric(resumed_dir, "train/total")) == [2, 3, 4, 5]  # 4 more steps, not 6
    assert_is_final_state(torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=False), 6)


SEEN_STEPS: list[int] = []


class LastStepSeen(L.Callback):
    """Test-only: before each batch, the global step held by last.ckpt (-1 while there is none), in SEEN_STEPS."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        last = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        SEEN_STEPS.append(torch.load(last, weights_only=False)["global_step"] if last.is_file() else -1)


def test_step_checkpoints_start_before_the_first_validation(train_cfg):
    """every_n_train_steps=1 in epoch 0, before val/score exists: Lightning's monitored checkpoint deferred them."""
    SEEN_STEPS.clear()
    with open_dict(train_cfg):
        train_cfg.trainer.limit_train_batches = 3
        train_cfg.callbacks.last_checkpoint.every_n_train_steps = 1
        train_cfg.callbacks.seen = OmegaConf.create({"_target_": f"{__name__}.LastStepSeen"})
    train(train_cfg)
    assert SEEN_STEPS == [-1, 1, 2]
