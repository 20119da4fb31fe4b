"""Training loop end to end with the test-only tiny matcher: run-dir artefacts, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from corrlab.pipeline.train import train


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


def test_resume_continues_from_checkpoint(train_cfg, tmp_path):
    train(train_cfg)
    last = Path(train_cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    first_state = torch.load(last, weights_only=False)
    with open_dict(train_cfg):
        train_cfg.ckpt_path = str(last)
        train_cfg.trainer.max_epochs = 2
    train(train_cfg)
    resumed = torch.load(last, weights_only=False)
    assert first_state["global_step"] == 2
    assert resumed["global_step"] == 4  # two more steps, not four: training continued from the checkpoint
