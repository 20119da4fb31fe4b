"""eval.py model=gcm on the HPatches fixtures (both layouts), the MegaDepth-1500 fixture and, through transfer,
the ETH3D and SPair-71k fixtures; with the released student where ../shared/data has it."""

from __future__ import annotations

import json

import pytest

from corrlab.pipeline.evaluate import evaluate
from tests.conftest import compose_config, shared_data
from tests.helpers.eth3d_fixture import write_eth3d
from tests.helpers.hpatches_fixture import write_hpatches
from tests.helpers.hpatches_gcm_fixture import write_hpatches_gcm
from tests.helpers.megadepth_fixture import write_megadepth
from tests.helpers.semantic_fixtures import write_spair

STUDENT = ["model=gcm", "model/gcm=avg_r2d2_95", "num_figures=0"]


def real_student() -> list[str]:
    return [f"weights={shared_data('weights/gcm/dstl_r2d2.pt')}"]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["release", "gcm"])
def test_gcm_on_both_hpatches_layouts_with_the_released_student(layout, tmp_path):
    weights = real_student()
    if layout == "gcm":  # the same file given by its role, as the VGG / ResNet configs take theirs
        weights = [weights[0].replace("weights=", "+weights.fine=")]  # eval.py adds the +
    root = tmp_path / "hpatches"
    (write_hpatches if layout == "release" else write_hpatches_gcm)(root)
    cfg = compose_config("eval", [*STUDENT, *weights, "data=hpatches", f"data.root={root}"], tmp_path / "run")
    metrics = evaluate(cfg)["metrics"]
    # 2 sequences x 2 pairs (v_artisans is excluded); the fixture's homographies are mild: GCM is near exact
    assert metrics["num_pairs"] == 4 and metrics["num_matches"] > 1000
    assert metrics["mma@3"] > 0.95 and metrics["hacc@5"] == 1.0
    records = [json.loads(line) for line in (tmp_path / "run" / "per_pair.jsonl").read_text().splitlines()]
    assert len(records) == 4


@pytest.mark.slow
def test_gcm_on_the_megadepth_fixture(tmp_path):
    root = write_megadepth(tmp_path / "megadepth")
    overrides = [*STUDENT, *real_student(), "data=megadepth", f"data.root={root}", "data.eval_resize.size=320"]
    metrics = evaluate(compose_config("eval", overrides, tmp_path / "run"))["metrics"]
    assert metrics["num_pairs"] == 3 and metrics["num_matches"] > 100 and metrics["pose_auc@20"] > 0.3


@pytest.mark.slow
def test_gcm_transfers_eth3d_and_spair_keypoints(tmp_path):
    eth3d = write_eth3d(tmp_path / "eth3d")
    overrides = [*STUDENT, *real_student(), "data=eth3d", f"data.root={eth3d}"]
    overrides += ["data.scenes=[lakeside]", "data.rates=[3]"]
    metrics = evaluate(compose_config("eval", overrides, tmp_path / "eth3d_run"))["metrics"]
    assert metrics["num_pairs"] > 0 and metrics["pck@5"] > 0.5
    spair = tmp_path / "SPair-71k"
    write_spair(spair)
    overrides = [*STUDENT, *real_student(), "data=spair", f"data.root={spair}"]
    metrics = evaluate(compose_config("eval", overrides, tmp_path / "spair_run"))["metrics"]
    # the fixture's targets are the sources shifted by a few pixels
    assert metrics["pck@0.1"] > 0.5


def test_gcm_eval_refuses_random_weights(tmp_path):
    from corrlab.pipeline.evaluate import MissingWeightsError

    root = write_hpatches(tmp_path / "hpatches")
    cfg = compose_config("eval", [*STUDENT, "data=hpatches", f"data.root={root}"], tmp_path / "run")
    with pytest.raises(MissingWeightsError, match="weights="):
        evaluate(cfg)
