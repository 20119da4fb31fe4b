"""train.py runs the three GeoAware-SC recipes on the fixtures (tiny grid, random fixture caches)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from corrlab.models.geoaware.aggregation import AggregationNetwork
from corrlab.pipeline.train import train
from tests.conftest import compose_config
from tests.helpers.geoaware_fixture import SPAIR_FIXTURE_IMAGES, TINY, write_feature_cache
from tests.helpers.semantic_fixtures import write_spair

FAST = [
    "trainer=cpu",
    "logger=csv",
    "trainer.max_epochs=1",
    "trainer.max_steps=1",
    "trainer.val_check_interval=1",
    "trainer.limit_val_batches=1",
    "~callbacks.progress_bar",
    "~callbacks.match_figure",
    *TINY,
]


def run(tmp_path: Path, overrides: list[str]) -> dict:
    cfg = compose_config("train", [*overrides, *FAST], tmp_path / "run")
    return train(cfg)


@pytest.fixture
def official(tmp_path) -> Path:
    path = tmp_path / "last.PTH"
    torch.save(AggregationNetwork().state_dict(), path)
    return path


@pytest.mark.slow
def test_spair_paper_recipe_trains_one_step(tmp_path, official):
    root = tmp_path / "SPair-71k"
    write_spair(root)
    write_feature_cache(tmp_path / "cache", SPAIR_FIXTURE_IMAGES, grid=12)
    overrides = ["experiment=geoaware_spair_paper", f"data.root={root}", f"model.features.root={tmp_path / 'cache'}"]
    metrics = run(tmp_path, [*overrides, f"model.init_weights={official}"])
    assert "val/pck@0.1" in metrics and "val/geo/pck@0.1" in metrics
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_pfpascal_and_ap10k_recipes_carry_the_reference_hyper_parameters(tmp_path):
    pascal = compose_config("train", ["experiment=geoaware_pfpascal_paper"], tmp_path / "a")
    assert pascal.callbacks.model_checkpoint.monitor == "val/pck@0.05" and pascal.trainer.max_epochs == 100
    assert pascal.model.losses.double_flip == 0 and pascal.model.optimizer.lr == 1.25e-3
    ap10k = compose_config("train", ["experiment=geoaware_ap10k_pretrain"], tmp_path / "b")
    assert ap10k.model.flip_table == "ap10k" and ap10k.trainer.max_epochs == 1 and ap10k.model.scheduler is None
    spair = compose_config("train", ["experiment=geoaware_spair_paper"], tmp_path / "c")
    assert spair.model.scheduler.steps_per_epoch == 53339 and spair.model.scheduler.pct_start == 0.3
    assert spair.trainer.val_check_interval == 5000 and spair.model.optimizer.weight_decay == 1e-3


@pytest.mark.slow
def test_one_training_step_updates_the_post_processor_and_the_soft_argmax_grid(tmp_path):
    from corrlab.datamodules.spair import SPairDataModule
    from corrlab.models.geoaware.feature_cache import FeatureCache
    from corrlab.modules.geoaware import GeoAwareSC

    root = tmp_path / "SPair-71k"
    write_spair(root)
    write_feature_cache(tmp_path / "cache", SPAIR_FIXTURE_IMAGES, grid=12)
    data = SPairDataModule(str(root), batch_size=1, flip_probability=0.0, train_resize={"mode": "none"})
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    module = GeoAwareSC(FeatureCache(str(tmp_path / "cache"), grid=12), grid=12, image_size=168).train()
    losses = module.compute_losses(batch)
    assert {"clip", "dense", "double_flip", "self_flip", "total"} <= set(losses)
    losses["total"].backward()
    assert module.net.mixing_weights.grad.abs().sum() > 0 and module.loss.x_normal.grad.abs().sum() > 0
