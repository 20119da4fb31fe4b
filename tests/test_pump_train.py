"""PUMP through the pipelines: a short training run leaves its artefacts and the checkpoint evaluates;
eval.py on synthetic pairs, on the HPatches fixture (resize policy on), with official weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from corrlab.models.convmixer import ConvMixer
from corrlab.pipeline.evaluate import evaluate
from corrlab.pipeline.train import train
from tests.conftest import compose_config
from tests.helpers.hpatches_fixture import write_hpatches

SMALL = ["data.image_size=[96,96]", "model.matching.resize=96"]


@pytest.mark.slow
def test_training_run_then_evaluation_of_its_checkpoint(tmp_path):
    overrides = [
        "trainer=cpu",
        "logger=csv",
        "trainer.max_epochs=1",
        "~callbacks.progress_bar",
        "data.num_train_pairs=4",
        "data.batch_size=2",
        "data.num_val_pairs=1",
        "trainer.log_every_n_steps=1",
        *SMALL,
    ]
    cfg = compose_config("train", overrides, tmp_path / "train")
    assert cfg.model._target_ == "corrlab.modules.pump.PUMP" and cfg.data._target_.endswith(
        "SyntheticDataModule"
    )  # the defaults
    metrics = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert 0 <= metrics["val/mma@3"] <= 1
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics)
    assert (out / "figures" / "val_matches.png").stat().st_size > 1000
    rows = (out / "csv" / "metrics.csv").read_text().splitlines()
    assert "train/ap" in rows[0] and "train/dm" in rows[0]
    checkpoint = out / "checkpoints" / "last.ckpt"
    eval_cfg = compose_config(
        "eval",
        ["model=pump", "data.num_test_pairs=1", "num_figures=0", f"ckpt_path={checkpoint}", *SMALL],
        tmp_path / "eval",
    )
    summary = evaluate(eval_cfg)
    (record,) = summary["weights"]
    assert record["role"] == "ckpt_path" and record["file"] == str(checkpoint.resolve())
    assert summary["metrics"]["num_matches"] > 0


@pytest.mark.slow
def test_eval_with_official_weights_on_the_hpatches_fixture(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "PUMP.pt"
    torch.save(ConvMixer().state_dict(), weights)
    root = write_hpatches(tmp_path / "hpatches", num_images=2, size=(121, 163))
    cfg = compose_config(
        "eval",
        [
            "model=pump",
            "data=hpatches",
            f"data.root={root}",
            f"weights={weights}",
            "num_figures=1",
            "model.matching.resize=96",
        ],
        tmp_path / "run",
    )
    summary = evaluate(cfg)
    (record,) = summary["weights"]
    assert record["file"] == str(weights.resolve()) and record["format"].startswith("official PUMP")
    assert summary["num_pairs"] == 2 and 0 <= summary["metrics"]["mma@3"] <= 1
    assert summary["metrics"]["num_matches"] > 10


@pytest.mark.slow
@pytest.mark.parametrize("data", ["megadepth", "eth3d"])
def test_eval_on_the_geometric_benchmarks(data, tmp_path):
    """MegaDepth-1500 pose through the sparse matches; ETH3D through the densified warp (the paper's ETH3D path)."""
    from tests.helpers.eth3d_fixture import write_eth3d
    from tests.helpers.megadepth_fixture import write_megadepth

    torch.manual_seed(0)
    weights = tmp_path / "PUMP.pt"
    torch.save(ConvMixer().state_dict(), weights)
    if data == "megadepth":
        overrides = [f"data.root={write_megadepth(tmp_path / 'megadepth')}", "data.eval_resize.size=160"]
    else:
        overrides = [
            f"data.root={write_eth3d(tmp_path / 'eth3d')}",
            "data.scenes=[lakeside]",
            "data.rates=[3]",
            "model.post_filter.enabled=true",
            "model.post_filter.densify=true",
            "model.matching.resize=160",
        ]
    cfg = compose_config(
        "eval", ["model=pump", f"data={data}", f"weights={weights}", "num_figures=0", *overrides], tmp_path / "run"
    )
    summary = evaluate(cfg)
    metrics = summary["metrics"]
    if data == "megadepth":
        assert summary["num_pairs"] == 3 and metrics["num_matches"] > 10
        assert all(0 <= metrics[f"pose_auc@{t}"] <= 1 for t in (5, 10, 20))
    else:
        assert summary["num_pairs"] > 0 and torch.isfinite(torch.tensor(metrics["aepe"]))
        assert all(0 <= metrics[f"pck@{k}"] <= 1 for k in (1, 3, 5))
