"""train.py runs the three GeoAware-SC recipes on the fixtures (tiny grid, random fixture caches)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from corrlab.models.geoaware.aggregation import AggregationNetwork
from corrlab.pipeline.train import train
from tests.conftest import compose_config
from tests.helpers.geoaware_fixture import SPAIR_FIXTURE_IMAGES, TINY, write_feature_cache
from tests.helpers.semantic_fixtures import write_ap10k, write_pfpascal, write_spair

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


def image_ids(root: Path) -> list[str]:
    """Feature keys of every image under a fixture root: its path under the root without the extension."""
    return [str(p.relative_to(root).with_suffix("")) for p in sorted(root.rglob("*.jpg"))]


def assert_one_step_from(checkpoint: Path, init: Path) -> None:
    """The checkpoint's AggregationNetwork is `init` moved by one AdamW step (|change| <= lr 1.25e-3 each)."""
    state = torch.load(checkpoint, weights_only=False)["state_dict"]  # our own Lightning checkpoint
    start = torch.load(init, weights_only=True)
    change = {k: (state[f"net.{k}"] - v).abs().max().item() for k, v in start.items() if v.is_floating_point()}
    assert max(change.values()) <= 1.3e-3 and sum(c > 0 for c in change.values()) > len(change) / 2


@pytest.mark.slow
def test_pfpascal_recipe_trains_one_step_from_the_ap10k_weights(tmp_path, official):
    root = tmp_path / "pf-pascal"
    write_pfpascal(root)
    write_feature_cache(tmp_path / "cache", image_ids(root), grid=12)
    overrides = ["experiment=geoaware_pfpascal_paper", f"data.root={root}", f"model.features.root={tmp_path / 'cache'}"]
    metrics = run(tmp_path, [*overrides, f"model.init_weights={official}"])
    assert metrics["val/score"] == metrics["val/pck@0.05"]  # the recipe's best-checkpoint metric
    assert_one_step_from(tmp_path / "run" / "checkpoints" / "last.ckpt", official)


@pytest.mark.slow
def test_ap10k_pretrain_recipe_trains_one_step_from_scratch(tmp_path):
    from corrlab.datamodules.ap10k_pairs import write_pairs

    root = tmp_path / "ap-10k"
    write_ap10k(root)
    write_pairs(root, root / "PairAnnotation", seed=42)
    write_feature_cache(tmp_path / "cache", image_ids(root), grid=12)
    overrides = ["experiment=geoaware_ap10k_pretrain", f"data.root={root}", f"model.features.root={tmp_path / 'cache'}"]
    metrics = run(tmp_path, overrides)
    assert metrics["val/score"] == metrics["val/pck@0.1"] and "val/geo/pck@0.1" in metrics
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


@pytest.mark.slow
def test_the_self_flip_gets_the_source_keypoints_the_target_lacks(tmp_path):
    from unittest import mock

    from corrlab.datamodules.spair import SPairDataModule
    from corrlab.models.geoaware.feature_cache import FeatureCache
    from corrlab.modules.geoaware import GeoAwareSC

    root = tmp_path / "SPair-71k"
    write_spair(root)
    write_feature_cache(tmp_path / "cache", SPAIR_FIXTURE_IMAGES, grid=12)
    data = SPairDataModule(str(root), batch_size=1)
    batch = next(iter(torch.utils.data.DataLoader(data.dataset("val"), batch_size=1)))  # source shows id 11 at (5, 5)
    assert batch["kpts_image_valid0"][0, 11] and not batch["kpts_valid"][0, 11]
    module = GeoAwareSC(FeatureCache(str(tmp_path / "cache"), grid=12), grid=12, image_size=168).train()
    with mock.patch.object(module.loss, "forward", wraps=module.loss.forward) as loss:
        assert "self_flip" in module.compute_losses(batch)
    own, own_valid = loss.call_args.args[7]
    assert own_valid.cpu().tolist() == batch["kpts_image_valid0"][0].tolist()
    expected = module.letterbox(batch, 0, 0).forward(torch.tensor([[5.0, 5.0]]))[0]
    torch.testing.assert_close(own[11].cpu(), expected)
