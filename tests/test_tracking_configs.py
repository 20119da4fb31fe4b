"""Config groups of tracking and scale-out compose as documented; debug presets and eval loggers run."""

from __future__ import annotations

import csv

import pytest
from hydra.utils import instantiate

from corrlab.config.schema import run_name
from corrlab.pipeline.evaluate import evaluate
from corrlab.pipeline.train import train
from tests.conftest import compose_config
from tests.helpers.training import tiny_run_config


def test_logger_overrides_follow_the_template_layout(tmp_path):
    cfg = compose_config("train", ["model=sift", "logger=visdom", "logger.visdom.port=8099"], tmp_path)
    assert list(cfg.logger) == ["visdom"]
    assert (
        cfg.logger.visdom._target_ == "corrlab.tracking.visdom_logger.VisdomLogger" and cfg.logger.visdom.port == 8099
    )
    assert cfg.logger.visdom.env.startswith("sift_synthetic_")
    many = compose_config("train", ["model=sift", "logger=many"], tmp_path)
    assert list(many.logger) == ["csv", "wandb", "visdom"]
    assert many.logger.wandb.name == "sift_synthetic" and many.logger.wandb.offline is None


def test_run_name_is_the_experiment_else_model_and_data():
    assert run_name("pump_paper", "pump", "megadepth") == "pump_paper"
    assert run_name(None, "patch2pix", "hpatches") == "patch2pix_hpatches"


def test_ddp_cpu_trainer_uses_two_gloo_processes(tmp_path):
    cfg = compose_config("train", ["model=sift", "trainer=ddp_cpu"], tmp_path)
    trainer = instantiate(cfg.trainer, _convert_="all")
    assert trainer.num_devices == 2 and trainer.strategy.process_group_backend == "gloo"
    gpu = compose_config("train", ["model=sift", "trainer=ddp", "trainer.num_nodes=2", "trainer.devices=4"], tmp_path)
    assert (gpu.trainer.strategy, gpu.trainer.num_nodes, gpu.trainer.devices, gpu.trainer.sync_batchnorm) == (
        "ddp",
        2,
        4,
        True,
    )


@pytest.mark.parametrize("preset", ["fdr", "overfit", "limit", "profiler"])
def test_debug_presets_compose(tmp_path, preset):
    cfg = compose_config("train", ["model=sift", f"debug={preset}"], tmp_path)
    assert cfg.task_name == "debug"


def test_profiler_preset_writes_a_profile(tmp_path):
    train(
        tiny_run_config(
            tmp_path,
            "debug=profiler",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
        )
    )
    assert "run_training_batch" in (tmp_path / "fit-profile.txt").read_text()


def test_optuna_search_space_composes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_config("train", ["model=sift", "hparams_search=optuna"], tmp_path)
    assert cfg.optimized_metric == "val/score"
    assert cfg.hydra.sweeper.direction == "maximize" and "model.optimizer.lr" in cfg.hydra.sweeper.params


def test_eval_sends_metrics_to_the_configured_logger(tmp_path):
    cfg = compose_config(
        "eval",
        ["model=sift", "data=synthetic", "logger=csv", "data.num_test_pairs=2", "data.image_size=[96,128]"],
        tmp_path,
    )
    summary = evaluate(cfg)
    with (tmp_path / "csv" / "metrics.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["test/mma@3"]) == pytest.approx(summary["metrics"]["mma@3"])
