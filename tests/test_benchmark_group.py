"""The conf/benchmark group: today's numbers reproduced through it, defaults per datamodule, misfits refused,
the main metric's direction followed by checkpoints and sweeps."""

from __future__ import annotations

import json

import pytest

from corrlab.pipeline.evaluate import evaluate
from tests.conftest import compose_config
from tests.helpers.hpatches_fixture import write_hpatches

# SIFT summaries recorded on the commit before the benchmark group with SIFT on OpenCV luminance grey (e667787),
# same fixtures and seeds
SYNTHETIC_8 = {
    "hacc@1": 0.875,
    "hacc@3": 1.0,
    "hauc@1": 0.6220614379271865,
    "hauc@10": 0.9626173633150756,
    "mma@1": 0.9288018480384289,
    "mma@3": 0.9559445215508735,
    "mma@10": 0.9659445215508735,
    "num_matches": 86.875,
    "num_pairs": 8.0,
    "prec_sym@1": 0.9304335944184201,
}
HPATCHES_FIXTURE = {
    "mma@1": 0.9311738140023451,
    "mma@3": 0.9679213182365969,
    "hacc@3": 1.0,
    "i/num_pairs": 2.0,
    "v/mma@1": 0.9741123338870432,
}


@pytest.mark.slow
@pytest.mark.parametrize("explicit", [False, True])
def test_today_numbers_are_reproduced_through_the_group(tmp_path, explicit):
    chosen = ["benchmark=synthetic_homography"] if explicit else []
    cfg = compose_config(
        "eval", ["model=sift", "data=synthetic", "data.num_test_pairs=8", "num_figures=0", *chosen], tmp_path / "s"
    )
    metrics = evaluate(cfg)["metrics"]
    assert {k: metrics[k] for k in SYNTHETIC_8} == pytest.approx(SYNTHETIC_8, rel=1e-12)
    root = write_hpatches(tmp_path / "hpatches")
    chosen = ["benchmark=hpatches_mma"] if explicit else []
    summary = evaluate(
        compose_config(
            "eval", ["model=sift", "data=hpatches", f"data.root={root}", "num_figures=0", *chosen], tmp_path / "h"
        )
    )
    assert {k: summary["metrics"][k] for k in HPATCHES_FIXTURE} == pytest.approx(HPATCHES_FIXTURE, rel=1e-12)
    spec = json.loads((tmp_path / "h" / "summary.json").read_text())["protocol"]["spec"]
    assert spec["benchmark"] == "hpatches_mma" and spec["homography"]["estimator"]["method"] == "ransac"
    assert spec["main_metric"] == {"name": "mma@3", "mode": "max"}


# SIFT on the MegaDepth and ETH3D fixtures of tests/helpers, computed by the code of e667787 (before the group)
MEGADEPTH_FIXTURE = {
    "num_inliers": 192.0,
    "num_matches": 202.0,
    "pose_auc@5": 0.6640766461563186,
    "pose_auc@10": 0.8320383230781593,
    "pose_auc@20": 0.9160191615390797,
}
ETH3D_FIXTURE = {
    "aepe": 0.7637802235909747,
    "pck@1": 0.9208333333333333,
    "pck_pooled@1": 0.9208333333333334,
    "rate3/aepe": 0.5317766567964709,
    "rate5/aepe": 0.9957837903854785,
    "rate5/pck@3": 0.975,
}


@pytest.mark.slow
def test_megadepth1500_and_eth3d_numbers_are_reproduced_through_the_group(tmp_path):
    from tests.helpers.eth3d_fixture import write_eth3d
    from tests.helpers.megadepth_fixture import write_megadepth

    runs = {
        "megadepth1500": (
            ["data=megadepth", f"data.root={write_megadepth(tmp_path / 'md')}", "data.eval_resize.size=360"],
            MEGADEPTH_FIXTURE,
        ),
        "eth3d": (
            ["data=eth3d", f"data.root={write_eth3d(tmp_path / 'eth3d')}", "data.scenes=[lakeside,delivery_area]"]
            + ["data.rates=[3,5]"],
            ETH3D_FIXTURE,
        ),
    }
    for benchmark, (overrides, recorded) in runs.items():
        cfg = compose_config(
            "eval", ["model=sift", "num_figures=0", f"benchmark={benchmark}", *overrides], tmp_path / benchmark
        )
        summary = evaluate(cfg)
        assert {k: summary["metrics"][k] for k in recorded} == pytest.approx(recorded, rel=1e-12)
        assert summary["protocol"]["spec"]["benchmark"] == benchmark


@pytest.mark.slow
def test_hpatches_ime_through_eval_records_its_protocol(tmp_path):
    root = write_hpatches(tmp_path / "hpatches", num_images=2)
    overrides = ["model=sift", "data=hpatches", f"data.root={root}", "num_figures=0", "benchmark=hpatches_ime"]
    plain = evaluate(compose_config("eval", overrides, tmp_path / "a"))
    quirky = evaluate(compose_config("eval", [*overrides, "benchmark.ime_quirks=true"], tmp_path / "b"))
    assert plain["protocol"]["spec"]["homography"]["estimator"]["method"] == "usac_magsac"
    assert plain["metrics"]["num_pairs"] == 2 and quirky["metrics"]["num_pairs"] == 1  # IME leaves the last pair out
    assert plain["protocol"]["fingerprint"] != quirky["protocol"]["fingerprint"]
    assert "hacc@7" in plain["metrics"]


def test_a_benchmark_that_does_not_fit_the_data_names_the_ones_that_do(tmp_path):
    root = write_hpatches(tmp_path / "hpatches", num_images=2)
    cfg = compose_config(
        "eval", ["model=sift", "data=hpatches", f"data.root={root}", "benchmark=semantic_pck"], tmp_path
    )
    with pytest.raises(ValueError, match=r"semantic_pck.*kpts0.*hpatches_ime, hpatches_mma, synthetic_homography"):
        evaluate(cfg)


@pytest.mark.slow
def test_each_datamodule_keeps_its_default_and_the_direction_follows_the_benchmark(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    defaults = {
        "synthetic": "synthetic_homography",
        "hpatches": "hpatches_mma",
        "hpatches_dense": "hpatches_dense",
        "megadepth": "megadepth1500",
        "eth3d": "eth3d",
        "spair": "semantic_pck",
    }
    for data, benchmark in defaults.items():
        cfg = compose_config("train", [f"data={data}"], tmp_path)
        assert cfg.benchmark.name == benchmark and cfg.data.benchmark.name == benchmark
    cfg = compose_config("train", ["data=synthetic"], tmp_path)
    assert cfg.callbacks.model_checkpoint.mode == "max"
    cfg = compose_config("train", ["data=synthetic", "benchmark=synthetic_dense"], tmp_path)
    assert cfg.callbacks.model_checkpoint.mode == "min" and cfg.benchmark.main_metric == "aepe"
    sweep = compose_config("train", ["hparams_search=optuna", "benchmark=synthetic_dense"], tmp_path)
    assert sweep.hydra.sweeper.direction == "minimize"
    cfg = compose_config("train", ["data=synthetic", "benchmark.figure_threshold_px=1.5"], tmp_path)
    assert cfg.callbacks.match_figure.threshold_px == 1.5


@pytest.mark.slow
def test_validation_scores_aepe_lower_is_better(train_cfg, tmp_path):
    """train.py with benchmark=synthetic_dense: val/score is the AEPE and the best checkpoint minimises it."""
    from omegaconf import open_dict

    from corrlab.pipeline.train import train

    with open_dict(train_cfg):  # data.benchmark and the checkpoint's mode interpolate ${benchmark}
        train_cfg.benchmark = compose_config("train", ["benchmark=synthetic_dense"], tmp_path / "c").benchmark
    assert train_cfg.callbacks.model_checkpoint.mode == "min"
    metrics = train(train_cfg)
    assert metrics["val/score"] == metrics["val/aepe"] and "val/pck@1" in metrics
