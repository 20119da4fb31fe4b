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


@pytest.mark.slow
def test_semantic_and_eth3d_runs_get_their_columns_figures_and_pair_key(tmp_path, monkeypatch):
    from corrlab.tracking import leaderboard_figure
    from tests.helpers.eth3d_fixture import write_eth3d
    from tests.helpers.semantic_fixtures import write_spair

    spair = tmp_path / "spair"
    write_spair(spair)
    semantic = ["data=spair", f"data.root={spair}", "num_figures=0", "allow_random_weights=true"]
    runs = []
    for name, model, extra in (("sift", None, ["model=sift"]), ("tiny", TINY_MODEL, [])):
        cfg = compose_config("eval", [*semantic, *extra], tmp_path / name)
        if model is not None:
            with open_dict(cfg):
                cfg.model = OmegaConf.create(model)
        evaluate(cfg)
        runs.append(tmp_path / name)
    eth3d = ["data=eth3d", f"data.root={write_eth3d(tmp_path / 'eth3d_data')}", "data.scenes=[lakeside]"]
    evaluate(compose_config("eval", [*eth3d, "data.rates=[3,5]", "model=sift", "num_figures=0"], tmp_path / "eth3d"))
    drawn = []
    for kind in ("grouped_bars", "aepe_per_rate"):  # which figure each protocol draws
        original = getattr(leaderboard_figure, kind)
        monkeypatch.setattr(
            leaderboard_figure, kind, lambda *a, _k=kind, _f=original, **kw: drawn.append(_k) or _f(*a, **kw)
        )

    markdown = compare([*runs, tmp_path / "eth3d"], tmp_path / "board").read_text()
    assert markdown.count("## ") == 2 and drawn == ["grouped_bars", "aepe_per_rate"]
    tables = {}
    for path in (tmp_path / "board").glob("leaderboard_*.csv"):
        with path.open() as handle:
            tables[path.stem] = list(csv.DictReader(handle))
        assert path.with_suffix(".png").stat().st_size > 1000
    by_columns = {tuple(rows[0]): rows for rows in tables.values()}
    semantic_rows = by_columns[("method", "pck@0.05", "pck@0.1", "pck@0.15", "pck_kpt@0.1", "geo/pck@0.1", "num_pairs")]
    assert [r["method"] for r in semantic_rows] == ["SIFTMatcher [sift]", "TinyMatcher"]  # SIFT twice: [run dir]
    assert (
        float(semantic_rows[0]["pck@0.1"]) == json.loads((runs[0] / "summary.json").read_text())["metrics"]["pck@0.1"]
    )
    assert ("method", "aepe", "pck@1", "pck@3", "pck@5", "num_pairs") in by_columns
    compare(runs, tmp_path / "pairs")  # the two semantic runs, pair by pair on pck@0.1
    with (tmp_path / "pairs" / "pairs_a_vs_b.csv").open() as handle:
        differences = list(csv.DictReader(handle))
    a, b = per_pair(runs[0], "pck@0.1"), per_pair(runs[1], "pck@0.1")
    assert {d["name"]: float(d["b - a"]) for d in differences} == pytest.approx({n: b[n] - a[n] for n in a})
