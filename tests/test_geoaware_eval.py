"""`python eval.py model=geoaware data=spair` end to end on the SPair fixture from a feature cache."""

from __future__ import annotations

import json

import pytest
import torch

from corrlab.pipeline.evaluate import evaluate
from tests.conftest import compose_config, shared_data
from tests.helpers.geoaware_fixture import SPAIR_FIXTURE_IMAGES, TINY, write_feature_cache
from tests.helpers.real_spair import write_real_spair
from tests.helpers.semantic_fixtures import write_spair


@pytest.fixture
def spair_with_cache(tmp_path):
    root = tmp_path / "SPair-71k"
    write_spair(root)
    write_feature_cache(tmp_path / "cache", SPAIR_FIXTURE_IMAGES, grid=12)
    return root, tmp_path / "cache"


@pytest.mark.slow
def test_eval_supervised_from_the_cache_with_official_weights(spair_with_cache, tmp_path):
    root, cache = spair_with_cache
    from corrlab.models.geoaware.aggregation import AggregationNetwork

    torch.save(AggregationNetwork().state_dict(), tmp_path / "best_856.PTH")
    overrides = ["model=geoaware", "data=spair", f"data.root={root}", f"model.features.root={cache}", *TINY]
    overrides += [f"weights={tmp_path / 'best_856.PTH'}", "num_figures=0"]
    summary = evaluate(compose_config("eval", overrides, tmp_path / "run"))
    metrics = summary["metrics"]
    assert metrics["num_pairs"] == 2 and metrics["geo/num_pairs"] == 2
    for key in ("pck@0.1", "pck_kpt@0.1", "geo/pck@0.1", "category/cat/pck@0.05"):
        assert 0.0 <= metrics[key] <= 1.0
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["metrics"] == pytest.approx(metrics, nan_ok=True)
    assert written["weights"][0]["format"] == "official (GeoAwareSC.load_official)"
    assert len((tmp_path / "run" / "per_pair.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_eval_zero_shot_with_the_flip_test(spair_with_cache, tmp_path):
    root, cache = spair_with_cache
    overrides = ["model=geoaware_zero_shot", "data=spair", f"data.root={root}", f"model.features.root={cache}", *TINY]
    summary = evaluate(compose_config("eval", overrides + ["num_figures=0"], tmp_path / "run"))
    assert summary["metrics"]["num_pairs"] == 2 and summary["model"]["adapt_flip"] is True


def test_supervised_eval_refuses_random_weights(spair_with_cache, tmp_path):
    from corrlab.pipeline.evaluate import MissingWeightsError

    root, cache = spair_with_cache
    overrides = ["model=geoaware", "data=spair", f"data.root={root}", f"model.features.root={cache}", *TINY]
    with pytest.raises(MissingWeightsError):
        evaluate(compose_config("eval", overrides, tmp_path / "run"))


def test_a_cache_from_other_settings_is_refused(spair_with_cache, tmp_path):
    root, cache = spair_with_cache
    overrides = ["model=geoaware_zero_shot", "data=spair", f"data.root={root}", f"model.features.root={cache}", *TINY]
    overrides += ["+model.features.settings={image_size: 840}"]
    with pytest.raises(Exception, match="other settings"):
        evaluate(compose_config("eval", overrides, tmp_path / "run"))


def test_a_cache_of_another_grid_is_refused_not_resampled(spair_with_cache, tmp_path):
    root, cache = spair_with_cache  # extracted on a 12 x 12 grid
    overrides = ["model=geoaware_zero_shot", "data=spair", f"data.root={root}", f"model.features.root={cache}"]
    overrides += ["model.grid=6", "model.image_size=84", "num_figures=0"]
    with pytest.raises(ValueError, match=r"s3 features are 12x12, this model's grid is 6x6.*features.grid=6"):
        evaluate(compose_config("eval", overrides, tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["geoaware", "geoaware_zero_shot"])
def test_eval_on_the_real_spair_format_pairs(model, tmp_path):
    """The real-photo SPair pairs (mirrored views among them) from a feature cache: summary.json holds PCK per
    image, per keypoint and on the geo-aware subset, and per_pair.jsonl one record per pair."""
    root = tmp_path / "SPair-71k"
    names = write_real_spair(root, shared_data(), categories=("cat",))
    ids = [str(p.relative_to(root).with_suffix("")) for p in sorted((root / "JPEGImages").rglob("*.jpg"))]
    write_feature_cache(tmp_path / "cache", ids, grid=12)
    overrides = [f"model={model}", "data=spair", f"data.root={root}", f"model.features.root={tmp_path / 'cache'}"]
    overrides += [*TINY, "num_figures=0"]
    if model == "geoaware":
        from corrlab.models.geoaware.aggregation import AggregationNetwork

        torch.save(AggregationNetwork().state_dict(), tmp_path / "best_856.PTH")
        overrides.append(f"weights={tmp_path / 'best_856.PTH'}")
    evaluate(compose_config("eval", overrides, tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    records = [json.loads(line) for line in (tmp_path / "run" / "per_pair.jsonl").read_text().splitlines()]
    assert [r["name"] for r in records] == names and metrics["num_pairs"] == len(names) == 4
    # per image = mean over pairs, per keypoint = pooled over keypoints, geo = the pairs with geo-aware keypoints
    assert metrics["pck@0.1"] == pytest.approx(sum(r["pck@0.1"] for r in records) / len(records))
    hits = sum(r["pck@0.1"] * r["num_keypoints"] for r in records)
    assert metrics["pck_kpt@0.1"] == pytest.approx(hits / sum(r["num_keypoints"] for r in records))
    assert metrics["geo/num_pairs"] == sum(r["num_geo_aware"] > 0 for r in records) >= 1
    for key in ("pck@0.1", "pck_kpt@0.1", "geo/pck@0.1", "geo/pck_kpt@0.1", "category/cat/pck@0.1"):
        assert 0.0 <= metrics[key] <= 1.0
