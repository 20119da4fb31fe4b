"""trainer=ddp_cpu (2 gloo processes) gives the metrics and weights of one process with the same global batch."""

from __future__ import annotations

import json

import pytest
import torch

from corrlab.pipeline.train import train
from tests.helpers.cli import TINY_TRAINING, run_cli
from tests.helpers.training import tiny_run_config

# 16 training pairs, 4 steps of 4 pairs (2 per rank under DDP); 5 validation pairs, which 2 ranks
# cannot split evenly: a padding sampler would score one twice.
DATA = [
    "data.num_train_pairs=16",
    "data.num_val_pairs=5",
    "trainer.max_steps=4",
    "trainer.max_epochs=-1",
    "trainer.num_sanity_val_steps=0",
]


@pytest.mark.slow
def test_ddp_cpu_matches_single_process(tmp_path):
    run_cli(
        "train.py", [*TINY_TRAINING, *DATA, "trainer=ddp_cpu", "data.batch_size=2", f"hydra.run.dir={tmp_path / 'ddp'}"]
    )
    single = train(tiny_run_config(tmp_path / "single", *DATA, "data.batch_size=4"))
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp["val/num_pairs"] == single["val/num_pairs"] == 5
    assert ddp.keys() == single.keys()
    for key in single:
        assert ddp[key] == pytest.approx(single[key], abs=1e-6), key

    state = {
        name: torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)
        for name in ("ddp", "single")
    }
    assert state["ddp"]["global_step"] == state["single"]["global_step"] == 4
    for key, value in state["single"]["state_dict"].items():
        torch.testing.assert_close(state["ddp"]["state_dict"][key], value, rtol=0, atol=1e-6)
