"""Shared fixtures: composed configs pointed at a temporary run dir, paths to ../shared/data."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from corrlab.config.schema import register_configs
from tests.helpers.paths import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "conf"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

TINY_MODEL = {
    "_target_": "tests.helpers.tiny_matcher.TinyMatcher",
    "dim": 16,
    "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
}


@pytest.fixture(autouse=True)
def seeded_generators():
    """Every test starts from the same random state, whatever ran before it on its worker: unseeded
    torch.rand / np.random / random draws in a test are reproducible, so a failure reruns the same way."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; skips the test when it is absent (a user's fresh clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not available: {path}")
    return path


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose conf/<config_name>.yaml with overrides, as Hydra would at run time in output_dir."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    cfg.hydra.runtime.output_dir = str(output_dir)
    cfg.hydra.runtime.cwd = str(PROJECT_ROOT)
    cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def with_tiny_model(cfg: DictConfig) -> DictConfig:
    with open_dict(cfg):
        cfg.model = OmegaConf.create(TINY_MODEL)
    return cfg


@pytest.fixture
def train_cfg(tmp_path: Path) -> DictConfig:
    """Train config with the test-only tiny model on a small synthetic set, CPU, no logger."""
    cfg = compose_config(
        "train",
        [
            "model=sift",
            "trainer=cpu",
            "logger=csv",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=2",
            "data.num_train_pairs=16",
            "data.num_val_pairs=4",
            "data.batch_size=2",
            "data.image_size=[64,80]",
            "~callbacks.progress_bar",
        ],
        tmp_path,
    )
    return with_tiny_model(cfg)
