"""Prediction cache: a re-score from the cache gives a fresh run's numbers without calling the model; a cache
made with another model, weights or inputs is refused, naming what differs; weights provenance in summary.json."""

from __future__ import annotations

import hashlib
import json

import h5py
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from corrlab.pipeline.evaluate import evaluate
from corrlab.pipeline.prediction_cache import StalePredictionCacheError
from corrlab.pipeline.run_files import write_jsonl
from tests.conftest import compose_config
from tests.helpers.counting_matcher import CountingMatcher
from tests.helpers.hpatches_fixture import write_hpatches
from tests.helpers.semantic_fixtures import write_spair
from tests.helpers.tiny_matcher import TinyMatcher

COUNTING = {"_target_": "tests.helpers.counting_matcher.CountingMatcher", "dim": 8}


def run(tmp_path, name: str, overrides: list[str], model: dict | None = None) -> dict:
    """evaluate() in run dir tmp_path/name; returns the summary and how often the model's match() ran."""
    cfg = compose_config("eval", ["num_figures=0", "allow_random_weights=true", *overrides], tmp_path / name)
    with open_dict(cfg):
        cfg.model = OmegaConf.create(model or COUNTING)
    CountingMatcher.calls = 0
    summary = evaluate(cfg)
    return {**summary, "calls": CountingMatcher.calls}


@pytest.fixture(scope="module")
def hpatches(tmp_path_factory):
    return write_hpatches(tmp_path_factory.mktemp("hpatches"), num_images=3, size=(96, 128))


@pytest.mark.slow
def test_rescore_with_another_ransac_threshold_reads_the_cache_and_matches_a_fresh_run(tmp_path, hpatches):
    data = ["data=hpatches", f"data.root={hpatches}"]
    first = run(tmp_path, "first", data)
    cache = tmp_path / "first" / "predictions.h5"
    assert first["calls"] == 4 and first["predictions"]["predicted"] == 4 and cache.is_file()

    rescored = run(tmp_path, "rescore", [*data, "benchmark.estimator.threshold=8.0", f"predictions={cache}"])
    fresh = run(tmp_path, "fresh", [*data, "benchmark.estimator.threshold=8.0", "save_predictions=false"])
    assert rescored["calls"] == 0 and rescored["predictions"]["from_cache"] == 4
    assert fresh["calls"] == 4 and fresh["predictions"] is None
    assert rescored["metrics"] == fresh["metrics"]
    assert rescored["protocol"]["fingerprint"] == fresh["protocol"]["fingerprint"] != first["protocol"]["fingerprint"]
    assert rescored["metrics"]["mma@3"] == first["metrics"]["mma@3"]  # same matches, only the estimator changed
    variant = run(tmp_path, "ime", [*data, "benchmark=hpatches_ime", f"predictions={cache}"])
    assert variant["calls"] == 0 and variant["protocol"]["spec"]["benchmark"] == "hpatches_ime"
    records = [json.loads(line) for line in (tmp_path / "rescore" / "per_pair.jsonl").read_text().splitlines()]
    with h5py.File(cache) as handle:  # every record points at its predictions, which hold the matches scored
        assert all(handle[r["prediction"]]["kpts0"].shape[0] == r["num_matches"] for r in records)


@pytest.mark.slow
def test_a_cache_made_with_another_model_or_weights_is_refused(tmp_path, hpatches):
    data = ["data=hpatches", f"data.root={hpatches}", "data.subset=i"]
    run(tmp_path, "first", data)
    cache = tmp_path / "first" / "predictions.h5"
    with pytest.raises(StalePredictionCacheError, match=r"model\.dim: 8 -> 16"):
        run(tmp_path, "other_model", [*data, f"predictions={cache}"], {**COUNTING, "dim": 16})
    with pytest.raises(StalePredictionCacheError, match=r"data\.resize"):
        run(tmp_path, "other_size", [*data, f"predictions={cache}", "data.resize={mode:long,size:64}"])
    with pytest.raises(StalePredictionCacheError, match=r"precision: '32' -> 'bf16-mixed'"):
        run(tmp_path, "other_precision", [*data, f"predictions={cache}", "precision=bf16-mixed"])

    state = tmp_path / "init.pt"
    torch.save(CountingMatcher(dim=8).state_dict(), state)
    with_init = {**COUNTING, "init": str(state)}
    run(tmp_path, "init", data, with_init)
    torch.save(CountingMatcher(dim=8).state_dict(), state)  # same path, new content
    with pytest.raises(StalePredictionCacheError, match=r"model_files\.init"):
        run(tmp_path, "init_changed", [*data, f"predictions={tmp_path / 'init' / 'predictions.h5'}"], with_init)


def test_a_cache_whose_images_differ_from_the_batch_is_refused(tmp_path, hpatches):
    data = ["data=hpatches", f"data.root={hpatches}", "data.subset=v"]
    run(tmp_path, "first", data)
    cache = tmp_path / "first" / "predictions.h5"
    with h5py.File(cache, "a") as handle:
        group = next(iter(handle["match"].values()))
        group.attrs["image1_id"] = "v_fixture/9.ppm"
    with pytest.raises(StalePredictionCacheError, match=r"image1_id='v_fixture/9.ppm'"):
        run(tmp_path, "again", [*data, f"predictions={cache}"])


@pytest.mark.slow
def test_semantic_cache_keeps_one_prediction_kind_per_query_direction(tmp_path):
    root = tmp_path / "spair"
    write_spair(root)
    data = ["data=spair", f"data.root={root}"]
    first = run(tmp_path, "first", data)
    cache = tmp_path / "first" / "predictions.h5"
    rescored = run(tmp_path, "alphas", [*data, "benchmark.alphas=[0.2,0.3]", f"predictions={cache}"])
    assert first["calls"] == 2 and rescored["calls"] == 0
    assert rescored["predictions"]["kind"] == "transfer_query0"
    other = run(tmp_path, "direction", [*data, "benchmark.convention=densematching", f"predictions={cache}"])
    fresh = run(tmp_path, "fresh", [*data, "benchmark.convention=densematching", "save_predictions=false"])
    assert other["calls"] == 2 and other["predictions"]["kind"] == "transfer_query1"  # new queries: the model runs
    assert other["metrics"] == fresh["metrics"]
    with h5py.File(cache) as handle:
        assert sorted(handle) == ["transfer_query0", "transfer_query1"]
    again = run(tmp_path, "direction_again", [*data, "benchmark.convention=densematching", f"predictions={cache}"])
    assert again["calls"] == 0 and again["metrics"] == fresh["metrics"]


@pytest.mark.slow
def test_weights_mapping_and_model_argument_weights_are_reported(tmp_path, hpatches):
    files = {}
    for role, seed in (("student", 1), ("teacher", 2), ("init", 3)):
        torch.manual_seed(seed)
        files[role] = tmp_path / f"{role}.pt"
        torch.save(CountingMatcher(dim=8).state_dict(), files[role])
    data = ["data=hpatches", f"data.root={hpatches}", "data.subset=i"]
    summary = run(
        tmp_path,
        "roles",
        [*data, f"+weights.student={files['student']}", f"+weights.teacher={files['teacher']}"],
        {**COUNTING, "init": str(files["init"])},
    )
    sha = {role: hashlib.sha256(path.read_bytes()).hexdigest()[:16] for role, path in files.items()}
    assert [(r["role"], r["sha256"]) for r in summary["weights"]] == [
        ("model.init", sha["init"]),
        ("teacher", sha["teacher"]),
        ("student", sha["student"]),
    ]
    assert all(r["file"] == str(files[r["role"].removeprefix("model.")].resolve()) for r in summary["weights"])
    rescored = run(
        tmp_path,
        "rescored",
        [*data, f"predictions={tmp_path / 'roles' / 'predictions.h5'}"]
        + [f"+weights.student={files['student']}", f"+weights.teacher={files['teacher']}"],
        {**COUNTING, "init": str(files["init"])},
    )
    assert rescored["calls"] == 0 and rescored["weights"] == summary["weights"]  # provenance kept in the cache

    with pytest.raises(ValueError, match="unknown role"):
        run(tmp_path, "bad_role", [*data, f"+weights.pupil={files['student']}"])
    with pytest.raises(ValueError, match="weights.<role>=<path> for student, teacher"):
        run(tmp_path, "one_file", [*data, f"weights={files['student']}"])
    with pytest.raises(ValueError, match="not a mapping"):
        run(
            tmp_path,
            "tiny",
            [*data, f"+weights.student={files['student']}"],
            {"_target_": "tests.helpers.tiny_matcher.TinyMatcher"},
        )


def test_mixed_precision_runs_where_the_method_allows_it(tmp_path, hpatches):
    data = ["data=hpatches", f"data.root={hpatches}", "data.subset=i", "save_predictions=false"]
    bf16 = run(tmp_path, "bf16", [*data, "precision=bf16-mixed"])
    assert bf16["calls"] == 2 and bf16["precision"] == "bf16-mixed" and bf16["metrics"]["num_pairs"] == 2
    assert not TinyMatcher.mixed_precision
    sift = {"_target_": "corrlab.modules.sift.SIFTMatcher"}
    with pytest.raises(ValueError, match=r"SIFTMatcher does not allow mixed precision \(precision=16-mixed\)"):
        run(tmp_path, "sift", [*data, "precision=16-mixed"], sift)
    # refused before anything starts: not from inside the export processes, and no run files written
    with pytest.raises(ValueError, match="SIFTMatcher does not allow mixed precision .*precision=32"):
        run(tmp_path, "sift2", [*data, "precision=bf16-mixed", "devices=2", "save_predictions=true"], sift)
    assert not (tmp_path / "sift2" / "config.yaml").exists()
    with pytest.raises(ValueError, match="precision must be one of 32, bf16-mixed, 16-mixed, got 'bf16'"):
        run(tmp_path, "typo", [*data, "precision=bf16"])


def test_a_dense_warp_at_half_resolution_is_cached_with_its_frame(tmp_path):
    dense = {"_target_": "tests.helpers.counting_matcher.DenseCountingMatcher", "dim": 8}
    data = ["data=synthetic", "benchmark=synthetic_dense", "data.num_test_pairs=2", "data.image_size=[48,64]"]
    first = run(tmp_path, "first", data, dense)
    cache = tmp_path / "first" / "predictions.h5"
    again = run(tmp_path, "again", [*data, f"predictions={cache}"], dense)
    assert first["calls"] == 2 and again["calls"] == 0 and again["metrics"] == first["metrics"]
    assert 0 < first["metrics"]["aepe"] < float("inf")
    with h5py.File(cache) as handle:
        group = next(iter(handle["dense_warp"].values()))
        assert group["warp"].shape == (24, 32, 2) and list(group.attrs["warp_frame"]) == [48, 64]


def test_per_pair_records_write_nan_and_inf_as_null(tmp_path):
    path = write_jsonl(
        tmp_path / "per_pair.jsonl", [{"name": "a", "h_error": float("inf"), "pck": [float("nan"), 1.0]}]
    )
    assert path.read_text() == '{"name": "a", "h_error": null, "pck": [null, 1.0]}\n'
