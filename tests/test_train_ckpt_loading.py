"""train.py ckpt_path= reads a checkpoint as eval.py does: a file with pickled code or random bytes is refused
naming it, its code never runs, and torch's advice to retry with weights_only=False is not passed on."""

from __future__ import annotations

import random

import pytest
import torch

from corrlab.datamodules.errors import UnreadableFileError
from corrlab.pipeline.train import train
from corrlab.safe_loading import UnsafeFileError
from tests.helpers.training import tiny_run_config
from tests.test_safe_loading import Marker


def resume(tmp_path, checkpoint) -> None:
    cfg = tiny_run_config(tmp_path / "run", "trainer.max_steps=2", "trainer.limit_val_batches=0")
    cfg.ckpt_path = str(checkpoint)
    train(cfg)


def test_resuming_from_a_checkpoint_with_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "marker"
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "loops": Marker(marker)}, checkpoint)
    with pytest.raises(UnsafeFileError) as error:
        resume(tmp_path, checkpoint)
    message = str(error.value)
    assert str(checkpoint) in message and "ckpt_path" in message and "io.open" in message
    assert "weights_only=False" not in message and not marker.exists()


def test_resuming_from_random_bytes_says_not_a_checkpoint(tmp_path):
    checkpoint = tmp_path / "last.ckpt"
    checkpoint.write_bytes(random.Random(0).randbytes(3000))
    with pytest.raises(UnreadableFileError, match="last.ckpt.*ckpt_path: not a valid checkpoint file") as error:
        resume(tmp_path, checkpoint)
    assert "weights_only" not in str(error.value) and "Re-running" not in str(error.value)
