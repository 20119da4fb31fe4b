"""eval.py and Lightning validation on the semantic benchmarks: every method predicts through transfer()."""

from __future__ import annotations

import json
import subprocess
import sys

import lightning as L
import pytest

from corrlab.datamodules.spair import SPairDataModule
from corrlab.modules.sift import SIFTMatcher
from corrlab.pipeline.evaluate import evaluate
from tests.conftest import compose_config
from tests.helpers.paths import PROJECT_ROOT
from tests.helpers.semantic_fixtures import write_pfpascal, write_spair


def test_sift_on_the_spair_fixture(tmp_path):
    root = tmp_path / "SPair-71k"
    write_spair(root)
    cfg = compose_config("eval", ["model=sift", "data=spair", f"data.root={root}", "num_figures=1"], tmp_path / "run")
    summary = evaluate(cfg)
    metrics = summary["metrics"]
    # the target is the source shifted by a few pixels: SIFT's nearest-match displacement transfers every keypoint
    assert metrics["num_pairs"] == 2 and metrics["pck@0.1"] == 1.0 and metrics["category/car/pck@0.05"] == 1.0
    assert metrics["geo/num_pairs"] == 2 and summary["protocol"]["spec"]["convention"] == "geoaware"
    records = [json.loads(line) for line in (tmp_path / "run" / "per_pair.jsonl").read_text().splitlines()]
    assert [r["category"] for r in records] == ["cat", "car"] and records[1]["viewpoint_variation"] == 2
    assert len(list((tmp_path / "run" / "figures").glob("*.png"))) == 1


def test_sift_on_the_pfpascal_fixture_with_the_densematching_convention(tmp_path):
    root = tmp_path / "pf-pascal"
    write_pfpascal(root)
    overrides = [
        "model=sift",
        "data=pfpascal",
        f"data.root={root}",
        "benchmark.convention=densematching",
        "num_figures=0",
    ]
    summary = evaluate(compose_config("eval", overrides, tmp_path / "run"))
    assert summary["metrics"]["num_pairs"] == 2 and summary["metrics"]["category/cat/pck@0.05"] == 1.0
    assert (
        summary["protocol"]["spec"]["direction"] == "target_to_source"
        and summary["protocol"]["spec"]["comparison"] == "error <= alpha * L"
    )


def test_validation_logs_the_semantic_score(tmp_path):
    root = tmp_path / "SPair-71k"
    write_spair(root)
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    metrics = trainer.validate(SIFTMatcher(), datamodule=SPairDataModule(root=str(root)), verbose=False)[0]
    assert metrics["val/score"] == metrics["val/pck@0.1"] == 1.0 and "val/category/cat/pck_kpt@0.1" in metrics


@pytest.mark.slow
def test_eval_cli_on_spair(tmp_path):
    root = tmp_path / "SPair-71k"
    write_spair(root)
    result = subprocess.run(
        [
            sys.executable,
            "eval.py",
            "model=sift",
            "data=spair",
            f"data.root={root}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["num_pairs"] == 2 and summary["metrics"]["pck@0.1"] == 1.0
