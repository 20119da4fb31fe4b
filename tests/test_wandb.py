"""W&B: offline without credentials, and the logged run read back from its local files."""

from __future__ import annotations

import json
import logging

import pytest
import wandb

from corrlab.pipeline.evaluate import evaluate
from corrlab.pipeline.train import train
from corrlab.tracking.eval_logging import table_cell
from corrlab.tracking.wandb_logger import AutoOfflineWandbLogger, wandb_credentials_found
from tests.conftest import compose_config
from tests.helpers.training import csv_metric, tiny_run_config
from tests.helpers.wandb_offline import OfflineRun, offline_run_dirs


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """A HOME without ~/.netrc and no W&B variables (restored afterwards, also WANDB_MODE, which
    Lightning's WandbLogger sets for offline runs)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "NETRC", "WANDB_BASE_URL", "WANDB_MODE"):
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "home").mkdir()
    yield tmp_path / "home"
    wandb.teardown()


def test_credentials_come_from_the_environment_or_netrc(no_credentials, monkeypatch):
    assert not wandb_credentials_found()
    assert AutoOfflineWandbLogger(project="p").offline
    (no_credentials / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "0" * 40 + "\n")
    assert wandb_credentials_found()
    assert not AutoOfflineWandbLogger(project="p").offline
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert AutoOfflineWandbLogger(project="p").offline
    (no_credentials / ".netrc").unlink()
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert wandb_credentials_found()
    assert not AutoOfflineWandbLogger(project="p", offline=False).offline


@pytest.mark.slow
def test_training_without_credentials_logs_offline_and_reads_back(no_credentials, tmp_path, caplog):
    cfg = tiny_run_config(
        tmp_path / "run", "logger=[csv,wandb]", "trainer.max_steps=4", "run_name=tiny_test", "tags=[a,b]"
    )
    with caplog.at_level(logging.INFO, logger="corrlab.tracking.wandb_logger"):
        metrics = train(cfg)
    (run_dir,) = offline_run_dirs(tmp_path / "run")
    run = OfflineRun(run_dir)
    assert (run.name, run.tags, run.project) == ("tiny_test", ["a", "b"], "corrlab")
    assert run.config["seed"] == 42 and run.config["data"]["num_train_pairs"] == 8  # the composed config
    assert run.series("train/total") == csv_metric(tmp_path / "run", "train/total")
    assert (
        run.series("val/score") == csv_metric(tmp_path / "run", "val/score") == {3: pytest.approx(metrics["val/score"])}
    )
    assert len(run.media("images/val/matches_*.png")) == 1
    assert f"wandb sync {run_dir}" in caplog.text


@pytest.mark.slow
def test_eval_logs_the_per_pair_table(no_credentials, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config(
        "eval",
        ["model=sift", "data=synthetic", "logger=wandb", "data.num_test_pairs=3", "data.image_size=[96,128]"],
        tmp_path / "eval",
    )
    summary = evaluate(cfg)
    (run_dir,) = offline_run_dirs(tmp_path / "eval")
    run = OfflineRun(run_dir)
    assert run.series("test/mma@3") == {0: pytest.approx(summary["metrics"]["mma@3"])}
    (row,) = [row for row in run.history if "test/per_pair/path" in row]
    table = json.loads((run_dir / "files" / row["test/per_pair/path"]).read_text())
    records = [json.loads(line) for line in (tmp_path / "eval" / "per_pair.jsonl").read_text().splitlines()]
    assert table["columns"] == list(records[0])
    assert table["data"] == [[table_cell(_number(r[c])) for c in table["columns"]] for r in records]
    assert len(run.media("images/test/matches_*.png")) == 3 and len(run.media("images/test/mma_*.png")) == 1


def _number(value):
    """per_pair.jsonl writes non-finite floats as strings."""
    return float(value) if value in ("inf", "-inf", "nan") else value
