"""Leaderboard: SIFT vs the tests' tiny model on synthetic pairs, through corrlab-compare and an eval.py multirun;
runs with different protocol fingerprints never share a column; pair-by-pair differences from per_pair.jsonl."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf, open_dict

from corrlab.pipeline.compare import compare, main
from corrlab.pipeline.evaluate import evaluate
from corrlab.tracking.leaderboard import load_runs, pair_differences
from tests.conftest import TINY_MODEL, compose_config
from tests.helpers.paths import PROJECT_ROOT

SYNTHETIC = ["data=synthetic", "data.num_test_pairs=3", "data.image_size=[64,80]", "num_figures=0"]


def eval_run(tmp_path, name: str, model: dict | None, *overrides: str):
    cfg = compose_config("eval", [*SYNTHETIC, "allow_random_weights=true", *overrides], tmp_path / name)
    if model is not None:
        with open_dict(cfg):
            cfg.model = OmegaConf.create(model)
    evaluate(cfg)
    return tmp_path / name


def per_pair(run, key):
    return {r["name"]: r[key] for r in map(json.loads, (run / "per_pair.jsonl").read_text().splitlines())}


@pytest.mark.slow
def test_compare_writes_one_table_a_figure_and_pair_differences(tmp_path, capsys):
    sift = eval_run(tmp_path, "sift", None, "model=sift")
    tiny = eval_run(tmp_path, "tiny", TINY_MODEL)
    main([str(sift), str(tiny), "--out", str(tmp_path / "board")])
    board = tmp_path / "board"
    fingerprint = json.loads((sift / "summary.json").read_text())["protocol"]["fingerprint"]
    with (board / f"leaderboard_{fingerprint}.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["method"] for r in rows] == ["SIFTMatcher", "TinyMatcher"]
    for row, run in zip(rows, (sift, tiny)):
        metrics = json.loads((run / "summary.json").read_text())["metrics"]
        assert float(row["mma@3"]) == metrics["mma@3"] and float(row["num_pairs"]) == 3
    markdown = (board / "leaderboard.md").read_text()
    assert (
        markdown.count("| SIFTMatcher |") == 1
        and markdown.count("## ") == 1
        and "SIFTMatcher" in capsys.readouterr().out
    )
    assert (board / f"leaderboard_{fingerprint}.png").stat().st_size > 1000

    with (board / "pairs_a_vs_b.csv").open() as handle:
        differences = list(csv.DictReader(handle))
    a, b = per_pair(sift, "mma@3"), per_pair(tiny, "mma@3")
    assert sorted(d["name"] for d in differences) == sorted(a)
    for d in differences:
        assert float(d["b - a"]) == pytest.approx(b[d["name"]] - a[d["name"]])
    gaps = [abs(float(d["b - a"])) for d in differences]
    assert gaps == sorted(gaps, reverse=True)


@pytest.mark.slow
def test_runs_scored_with_different_protocols_never_share_a_column(tmp_path):
    first = eval_run(tmp_path, "sift", None, "model=sift")
    other = eval_run(tmp_path, "sift_other", None, "model=sift", "data.homography.rotation_deg=5.0")
    markdown = compare([first, other], tmp_path / "board").read_text()
    assert markdown.count("## ") == 2 and "2 different protocols" in markdown and "homography_sampler" in markdown
    assert len(list((tmp_path / "board").glob("leaderboard_*.csv"))) == 2
    assert not (tmp_path / "board" / "pairs_a_vs_b.csv").exists()
    with pytest.raises(ValueError, match="different protocols"):
        pair_differences(*load_runs([first, other]))


def test_compare_names_a_folder_that_is_not_a_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 2 and "no summary.json" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_multirun_writes_the_leaderboard_of_its_jobs(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "eval.py",
            "-m",
            "hydra.searchpath=[file://tests/helpers/conf]",
            "model=sift,tiny",
            *SYNTHETIC,
            "allow_random_weights=true",
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    markdown = (tmp_path / "leaderboard" / "leaderboard.md").read_text()
    assert "| SIFTMatcher |" in markdown and "| TinyMatcher |" in markdown and markdown.count("## ") == 1
