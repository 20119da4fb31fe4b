"""`python train.py -m ...`: Hydra's basic multirun sweep, and the Optuna sweeper config."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers.cli import TINY_TRAINING, run_cli

SHORT = [*TINY_TRAINING, "trainer.max_epochs=1", "trainer.limit_train_batches=2", "data.num_val_pairs=2"]


@pytest.mark.slow
def test_multirun_runs_every_combination(tmp_path):
    run_cli("train.py", ["-m", *SHORT, "data.num_train_pairs=8", "data.batch_size=2,4", f"hydra.sweep.dir={tmp_path}"])
    for job, batch_size in ((0, 2), (1, 4)):
        assert yaml.safe_load((tmp_path / str(job) / "config.yaml").read_text())["data"]["batch_size"] == batch_size
        assert "val/score" in json.loads((tmp_path / str(job) / "metrics.json").read_text())


@pytest.mark.slow
def test_optuna_sweeper_maximises_the_optimized_metric(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    run_cli(
        "train.py",
        [
            "-m",
            "hparams_search=optuna",
            *SHORT,
            "data.num_train_pairs=32",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            f"hydra.sweep.dir={tmp_path}",
        ],
    )
    scores = [json.loads((tmp_path / str(trial) / "metrics.json").read_text())["val/score"] for trial in range(2)]
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(max(scores))
    assert set(results["best_params"]) == {"model.optimizer.lr", "data.batch_size"}
