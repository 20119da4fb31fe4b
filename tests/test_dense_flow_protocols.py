"""Each of the four dense flow methods through eval.py on the dense protocols' fixtures (KITTI-2015, dense
HPatches at 240) and the shared sparse path (HPatches), and its match() on the real ETH3D pair of ../shared/data
(random weights: the paths and protocols are tested, not the numbers)."""

from __future__ import annotations

import math

import pytest
import torch

from corrlab.datamodules.image_io import read_image
from corrlab.pipeline.evaluate import evaluate
from corrlab.pipeline.instantiate import instantiate_method
from tests.conftest import compose_config, shared_data
from tests.helpers.hpatches_fixture import write_hpatches
from tests.helpers.kitti_fixture import smooth_pair, write_kitti
from tests.test_dense_flow import write_dense_fixture

MODELS = ["glunet", "glunet_gocor", "pwcnet", "pwcnet_gocor"]
FAST = ["allow_random_weights=true", "num_figures=0", "model.certainty=none", "model.sampler.num_matches=100"]


def run(model: str, tmp_path, *overrides: str) -> dict:
    return evaluate(compose_config("eval", [f"model={model}", *FAST, *overrides], tmp_path))["metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_dense_flow_method_on_the_kitti_and_hpatches_fixtures(model, tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("CORRLAB_OPS", "cpp")
    pairs = {"000000": smooth_pair(40, 96, (2.5, 0.5)), "000001": smooth_pair(40, 96, (-4.0, 1.0))}
    kitti = write_kitti(tmp_path_factory.mktemp("kitti"), 2015, pairs)
    metrics = run(model, tmp_path / "kitti", "data=kitti2015", f"data.root={kitti}")
    assert metrics["num_pairs"] == 2 and math.isfinite(metrics["aepe"]) and 0.0 <= metrics["fl"] <= 100.0

    hpatches = write_hpatches(tmp_path_factory.mktemp("hp") / "hpatches", num_images=2, size=(120, 160))
    metrics = run(model, tmp_path / "hp", "data=hpatches", f"data.root={hpatches}")
    assert metrics["num_pairs"] == 2 and 0.0 <= metrics["mma@3"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_dense_flow_method_on_dense_hpatches(model, tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("CORRLAB_OPS", "cpp")
    csv_dir = shared_data("hpatches", "glunet_csv")
    dense, _ = write_dense_fixture(tmp_path_factory.mktemp("hp_dense"), ["v_london"])
    for k in range(3, 7):  # one pair, 1 -> 2; the other four are counted as skipped
        (dense / "v_london" / f"{k}.ppm").unlink()
    overrides = ["data=hpatches_dense", f"data.root={dense}", f"data.csv_dir={csv_dir}", "data.image_size=[240,240]"]
    metrics = run(model, tmp_path, *overrides, "data.on_missing=skip")
    assert metrics["num_pairs"] == 1 and math.isfinite(metrics["aepe"]) and 0.0 <= metrics["pck@5"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_dense_flow_method_matches_the_real_eth3d_pair(model, tmp_path):
    folder = shared_data("eth3d", "densematching_demo_pair_noGT")
    image0, image1 = read_image(folder / "eth3d_query.png"), read_image(folder / "eth3d_reference.png")
    cfg = compose_config("eval", [f"model={model}", *FAST], tmp_path)
    method = instantiate_method(cfg.model).eval()
    batch = {"image0": image0[None], "image1": image1[None]}
    with torch.no_grad():
        matches = method.match(batch)
    h, w = image0.shape[-2:]
    assert matches.warp.shape == (1, h, w, 2) and torch.isfinite(matches.warp).all()
    assert 0 < len(matches.kpts0) <= 100
    assert ((matches.kpts0 >= -0.5) & (matches.kpts0 <= torch.tensor([w - 0.5, h - 0.5]))).all()
