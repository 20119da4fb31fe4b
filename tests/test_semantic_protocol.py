"""Semantic PCK protocol: oracle transfers score perfectly, known perturbations give hand-computed PCK under
both conventions, the geometry-aware subset follows GeoAware-SC's rule, predictions go through transfer()."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.benchmarks.semantic import SemanticBenchmark, geo_aware_mask, swap_sides
from corrlab.datamodules.collate import collate_pairs
from corrlab.datamodules.spair import SPairDataModule
from corrlab.metrics import SemanticPCK
from corrlab.modules.base import MatchingModule
from tests.helpers.oracle_transfer import OracleTransfer
from tests.helpers.semantic_fixtures import write_spair


def run(root, model: MatchingModule, batch_size: int = 1, resize=None, **protocol) -> tuple[dict, list[dict]]:
    """Score the SPair fixture; `protocol`: SemanticBenchmark parameters (convention, threshold, alphas)."""
    dm = SPairDataModule(
        root=str(root), eval_batch_size=batch_size, resize=resize, benchmark=partial(SemanticBenchmark, **protocol)
    )
    benchmark = dm.make_benchmark("test")
    for batch in dm.test_dataloader():
        benchmark.update(batch, benchmark.predict(model, batch))
    return benchmark.compute(), benchmark.records


@pytest.fixture(scope="module")
def spair_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("spair") / "SPair-71k"
    write_spair(root)
    return root


@pytest.mark.parametrize("convention", ["geoaware", "densematching"])
@pytest.mark.parametrize("resize", [None, {"mode": "long", "size": 100}])
def test_oracle_transfer_scores_perfectly(spair_root, convention, resize):
    metrics, records = run(spair_root, OracleTransfer(), convention=convention, resize=resize)
    assert metrics["num_pairs"] == 2 and metrics["geo/num_pairs"] == 2
    for key, value in metrics.items():
        if "pck" in key:
            assert value == pytest.approx(1.0), key
    # L in original pixels whatever the resize: target bboxes 160 x 140 and 150 x 120, source ones 160 and 190 wide
    expected = [160.0, 150.0] if convention == "geoaware" else [160.0, 190.0]
    assert [r["threshold_px"] for r in records] == pytest.approx(expected, abs=1e-3)


# errors along x per keypoint (original pixels), in kps_ids order: cat ids [0,1,2,3,9,10], car ids [0,1,4,10,11]
SHIFTS = {"cat": [0.0, 3.0, 8.0, 9.0, 16.0, 20.0], "car": [0.0, 3.0, 8.0, 9.0, 16.0]}


def test_known_shift_gives_hand_computed_pck_geoaware(spair_root):
    """L = target bbox side (cat 160, car 150), correct when error < alpha * L."""
    metrics, records = run(spair_root, OracleTransfer(SHIFTS), convention="geoaware")
    # cat thresholds 1.6 / 8 / 16 / 24 -> 1, 2, 4, 6 of 6 correct; car 1.5 / 7.5 / 15 / 22.5 -> 1, 2, 4, 5 of 5
    assert [records[0][f"pck@{a}"] for a in (0.01, 0.05, 0.1, 0.15)] == pytest.approx([1 / 6, 2 / 6, 4 / 6, 1])
    assert [records[1][f"pck@{a}"] for a in (0.01, 0.05, 0.1, 0.15)] == pytest.approx([1 / 5, 2 / 5, 4 / 5, 1])
    assert metrics["pck@0.05"] == pytest.approx((2 / 6 + 2 / 5) / 2) and metrics["pck_kpt@0.05"] == pytest.approx(
        4 / 11
    )
    assert metrics["pck@0.1"] == pytest.approx((4 / 6 + 4 / 5) / 2) and metrics["pck_kpt@0.1"] == pytest.approx(8 / 11)
    assert metrics["category/cat/pck@0.1"] == pytest.approx(4 / 6) and metrics[
        "category/car/pck_kpt@0.05"
    ] == pytest.approx(2 / 5)
    assert (
        metrics["viewpoint_variation/2/pck@0.1"] == pytest.approx(4 / 5) and metrics["scale_variation/1/num_pairs"] == 2
    )
    assert "viewpoint_variation/1/num_pairs" not in metrics  # no pair has that value
    # geo-aware: cat ids 2, 3, 9, 10 (errors 8, 9, 16, 20); car ids 0, 1, 10 (errors 0, 3, 9)
    assert [r["num_geo_aware"] for r in records] == [4, 3]
    assert metrics["geo/pck@0.05"] == pytest.approx((0 + 2 / 3) / 2) and metrics["geo/pck_kpt@0.05"] == pytest.approx(
        2 / 7
    )
    assert metrics["geo/pck@0.1"] == pytest.approx((2 / 4 + 3 / 3) / 2) and metrics["geo/pck_kpt@0.1"] == pytest.approx(
        5 / 7
    )


def test_known_shift_gives_hand_computed_pck_densematching(spair_root):
    """Target keypoints transferred into the source; L = source bbox side (cat 160, car 190), error <= alpha * L."""
    metrics, records = run(spair_root, OracleTransfer(SHIFTS), convention="densematching")
    # cat thresholds 1.6 / 8 / 16 / 24 -> 1, 3, 5, 6 of 6; car 1.9 / 9.5 / 19 / 28.5 -> 1, 4, 5, 5 of 5
    assert [records[0][f"pck@{a}"] for a in (0.01, 0.05, 0.1, 0.15)] == pytest.approx([1 / 6, 3 / 6, 5 / 6, 1])
    assert [records[1][f"pck@{a}"] for a in (0.01, 0.05, 0.1, 0.15)] == pytest.approx([1 / 5, 4 / 5, 1, 1])
    assert metrics["pck@0.05"] == pytest.approx((3 / 6 + 4 / 5) / 2) and metrics["pck_kpt@0.05"] == pytest.approx(
        7 / 11
    )
    assert metrics["pck_kpt@0.1"] == pytest.approx(10 / 11)


def test_shift_in_resized_batches_is_scored_in_original_pixels(spair_root):
    """The same original-pixel errors, predicted at half resolution, give the same scores (cat is 200 px wide)."""
    metrics, _ = run(spair_root, OracleTransfer({"cat": SHIFTS["cat"]}), resize={"mode": "long", "size": 100})
    assert metrics["category/cat/pck@0.1"] == pytest.approx(4 / 6) and metrics[
        "category/cat/pck@0.05"
    ] == pytest.approx(2 / 6)


def test_image_threshold_uses_the_longer_image_side(spair_root):
    metrics, records = run(spair_root, OracleTransfer(SHIFTS), threshold="image")
    assert [r["threshold_px"] for r in records] == [200.0, 220.0]  # both images are 160 x 200 and 160 x 220
    assert records[0]["pck@0.05"] == pytest.approx(4 / 6)  # 0.05 * 200 = 10 > 0, 3, 8, 9


def test_missing_predictions_count_as_wrong(spair_root):
    class NoMatches(OracleTransfer):
        def transfer(self, batch, query_kpts0):
            out = super().transfer(batch, query_kpts0)
            out[:, 0] = float("nan")  # keypoint id 0 is in both pairs
            return out

    metrics, records = run(spair_root, NoMatches())
    assert metrics["pck_kpt@0.15"] == pytest.approx(9 / 11) and [r["num_unpredicted"] for r in records] == [1, 1]


def test_batched_evaluation_equals_one_pair_at_a_time(spair_root):
    options = {"resize": {"mode": "fixed", "size": [120, 160]}}
    single, _ = run(spair_root, OracleTransfer(SHIFTS), **options)
    batched, _ = run(spair_root, OracleTransfer(SHIFTS), batch_size=2, **options)
    assert batched == pytest.approx(single)


def test_geo_aware_subset_on_a_hand_made_case():
    groups = ((2, 3), (9, 10, 11, 12), (4, 5))
    visible = np.zeros(30, dtype=bool)
    visible[[0, 2, 3, 9, 5]] = True  # in the prediction image
    ids = np.array([0, 2, 9, 5])  # mutually visible
    # 2: its group (2, 3) has two visible members; 9: only 9 of its group is visible; 0: no group;
    # 5: only 5 of (4, 5) is visible
    assert geo_aware_mask(groups, ids, visible).tolist() == [False, True, False, False]
    visible[11] = True  # a member visible only in the prediction image still counts
    assert geo_aware_mask(groups, ids, visible).tolist() == [False, True, True, False]


def test_strict_comparison_differs_only_at_the_threshold():
    errors = torch.tensor([4.0, 5.0, 6.0])
    assert SemanticPCK.correct(errors, 50, [0.1]).flatten().tolist() == [True, True, False]
    assert SemanticPCK.correct(errors, 50, [0.1], strict=True).flatten().tolist() == [True, False, False]


def semantic_data() -> BenchmarkData:
    return BenchmarkData(
        "spair", "test", ["x"], ("kpts0", "kpts1", "kpts_valid", "category"), {}, facts={"categories": ["cat"]}
    )


def test_predict_pairs_queries_with_transfers_in_both_directions(spair_root):
    dm = SPairDataModule(root=str(spair_root))
    batch = collate_pairs([dm.dataset("test")[0]])
    swapped = swap_sides(batch)
    assert torch.equal(swapped["kpts0"], batch["kpts1"]) and torch.equal(swapped["image1"], batch["image0"])
    assert swapped["name"] == batch["name"] and torch.equal(swapped["kpts_valid"], batch["kpts_valid"])
    model = OracleTransfer()
    valid = batch["kpts_valid"][0]
    forward = SemanticBenchmark(semantic_data(), convention="geoaware").predict(model, batch)
    assert torch.equal(forward.kpts0, batch["kpts0"][0][valid]) and torch.equal(forward.kpts1, batch["kpts1"][0][valid])
    backward = SemanticBenchmark(semantic_data(), convention="densematching").predict(model, batch)
    assert torch.equal(backward.kpts1, batch["kpts1"][0][valid]) and torch.equal(
        backward.kpts0, batch["kpts0"][0][valid]
    )


def test_protocol_spec_records_the_convention(spair_root):
    protocol = partial(SemanticBenchmark, convention="densematching", threshold="image")
    spec = SPairDataModule(root=str(spair_root), benchmark=protocol).make_benchmark("test").spec()
    assert spec["direction"] == "target_to_source" and spec["comparison"] == "error <= alpha * L"
    assert spec["threshold_base"] == "max(H, W) of image 0 (source)" and spec["pairs"]["count"] == 2
    other = SPairDataModule(root=str(spair_root)).make_benchmark("test").spec()
    assert other["direction"] == "source_to_target" and other["comparison"] == "error < alpha * L"
    with pytest.raises(ValueError, match=r"benchmark.convention must be one of \['densematching', 'geoaware'\]"):
        SPairDataModule(root=str(spair_root), benchmark=partial(SemanticBenchmark, convention="mine")).make_benchmark(
            "test"
        )
