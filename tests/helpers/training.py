"""Composing short training runs of the test-only tiny matcher, and reading their logs back."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from tests.conftest import compose_config, with_tiny_model

TINY_RUN = [
    "model=sift",
    "trainer=cpu",
    "logger=csv",
    "trainer.max_epochs=-1",
    "trainer.log_every_n_steps=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
]
TINY_SYNTHETIC = [
    "data.num_train_pairs=8",
    "data.num_val_pairs=2",
    "data.batch_size=2",
    "data.image_size=[48,64]",
]


def tiny_run_config(
    output_dir: Path, *overrides: str, callbacks: dict[str, Any] | None = None, data: list[str] | None = None
) -> DictConfig:
    """train.yaml with the tiny matcher on a few 48x64 synthetic pairs (4 batches per epoch), or on the
    `data` overrides when given, CPU, every step logged to CSV; `callbacks` adds callback configs by name."""
    data = TINY_SYNTHETIC if data is None else data
    cfg = with_tiny_model(compose_config("train", [*TINY_RUN, *data, *overrides], Path(output_dir)))
    with open_dict(cfg):
        for name, node in (callbacks or {}).items():
            cfg.callbacks[name] = OmegaConf.create(node)
    return cfg


def step_checkpoints(dirpath: Path) -> dict[str, Any]:
    """A ModelCheckpoint config that keeps a checkpoint after every optimizer step: step001.ckpt, ..."""
    return {
        "_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
        "dirpath": str(dirpath),
        "filename": "step{step:03d}",
        "auto_insert_metric_name": False,
        "every_n_train_steps": 1,
        "save_top_k": -1,
        "monitor": None,
    }


def csv_metric(output_dir: Path, key: str) -> dict[int, float]:
    """{step: value} of one metric from the run's CSV log."""
    with (Path(output_dir) / "csv" / "metrics.csv").open() as handle:
        return {int(row["step"]): float(row[key]) for row in csv.DictReader(handle) if row.get(key)}
