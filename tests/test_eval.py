"""eval.py end to end: SIFT on a tiny HPatches-layout fixture, on the real HPatches pairs, and on synthetic pairs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from corrlab.pipeline.evaluate import MissingWeightsError, evaluate
from corrlab.pipeline.train import train
from tests.conftest import TINY_MODEL, compose_config, shared_data
from tests.helpers.hpatches_fixture import write_hpatches
from tests.helpers.paths import PROJECT_ROOT


def test_sift_on_hpatches_fixture(tmp_path):
    root = write_hpatches(tmp_path / "hpatches")
    cfg = compose_config(
        "eval", ["model=sift", "data=hpatches", f"data.root={root}", "num_figures=1"], tmp_path / "run"
    )
    summary = evaluate(cfg)
    metrics = summary["metrics"]
    assert metrics["num_pairs"] == 4  # 2 sequences x pairs (1,2), (1,3); v_artisans excluded
    assert metrics["i/num_pairs"] == 2 and metrics["v/num_pairs"] == 2
    assert metrics["mma@3"] > 0.9 and metrics["hacc@3"] == 1.0
    assert [metrics[f"mma@{t}"] for t in range(1, 11)] == sorted(metrics[f"mma@{t}"] for t in range(1, 11))
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["protocol"]["fingerprint"] == summary["protocol"]["fingerprint"]
    assert on_disk["protocol"]["spec"]["pairs"]["count"] == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "per_pair.jsonl").read_text().splitlines()]
    assert [r["name"] for r in records] == ["i_fixture/1-2", "i_fixture/1-3", "v_fixture/1-2", "v_fixture/1-3"]
    assert (tmp_path / "run" / "mma.png").is_file() and len(list((tmp_path / "run" / "figures").glob("*.png"))) == 1


def test_protocol_fingerprint_changes_with_the_protocol(tmp_path):
    root = write_hpatches(tmp_path / "hpatches", num_images=2)
    fingerprints = []
    for overrides in ([], ["data.ransac_threshold=3.0"], ["data.exclude_large=false"]):
        cfg = compose_config(
            "eval", ["data=hpatches", f"data.root={root}", "num_figures=0", *overrides], tmp_path / "run"
        )
        fingerprints.append(evaluate(cfg)["protocol"]["fingerprint"])
    assert len(set(fingerprints)) == 3


def test_sift_on_real_hpatches_pairs(tmp_path):
    root = shared_data("hpatches", "partial_pairs")
    cfg = compose_config("eval", ["model=sift", "data=hpatches", f"data.root={root}", "num_figures=0"], tmp_path)
    metrics = evaluate(cfg)["metrics"]
    assert metrics["num_pairs"] == 3  # v_boat 1-2, v_calder 1-4, v_adam 1-3
    assert metrics["mma@3"] > 0.7 and metrics["hacc@3"] >= 2 / 3


def test_learned_model_without_weights_is_refused(tmp_path):
    cfg = compose_config("eval", ["data=synthetic", "data.num_test_pairs=2", "num_figures=0"], tmp_path)
    with open_dict(cfg):
        cfg.model = TINY_MODEL
    with pytest.raises(MissingWeightsError, match="ckpt_path"):
        evaluate(cfg)
    with open_dict(cfg):
        cfg.weights = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="weights"):
        evaluate(cfg)


def test_eval_loads_a_trained_checkpoint(train_cfg, tmp_path):
    train(train_cfg)
    checkpoint = Path(train_cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    cfg = compose_config(
        "eval",
        [
            "data=synthetic",
            "data.num_test_pairs=2",
            "data.image_size=[64,80]",
            f"ckpt_path={checkpoint}",
            "num_figures=0",
        ],
        tmp_path / "eval",
    )
    with open_dict(cfg):
        cfg.model = TINY_MODEL
    summary = evaluate(cfg)
    (record,) = summary["weights"]
    assert record["format"].startswith("corrlab Lightning checkpoint") and record["file"] == str(checkpoint.resolve())
    assert record["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:16]
    assert summary["metrics"]["num_pairs"] == 2
    trained = torch.load(checkpoint, weights_only=False)["state_dict"]["net.0.weight"]
    assert not torch.allclose(trained, torch.zeros_like(trained))


@pytest.mark.slow
def test_eval_cli_on_synthetic(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "eval.py",
            "model=sift",
            "data=synthetic",
            "data.num_test_pairs=3",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["num_pairs"] == 3 and summary["metrics"]["mma@3"] > 0.5
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "per_pair.jsonl").is_file()


@pytest.mark.slow
def test_cli_typo_names_valid_keys(tmp_path):
    result = subprocess.run(
        [sys.executable, "eval.py", "model.ratio_=0.7", f"hydra.run.dir={tmp_path}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "Unknown config key 'model.ratio_'" in result.stderr and "Did you mean 'ratio'" in result.stderr
