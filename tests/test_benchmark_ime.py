"""hpatches_ime against hand-computed values, with and without IME's quirks; the estimator registry."""

from __future__ import annotations

import pytest
import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.benchmarks.select import benchmark_factory
from corrlab.geometry.estimators import HomographyEstimator, method_flag, register_method
from corrlab.matches import Matches

NAMES = ["i_a/1-2", "v_b/1-2", "v_c/1-2"]
# 18 matches whose image-1 points follow x' = 1.02 x, y' = y against an identity ground truth: errors 0.02 x
XS = (10.0, 40.0, 60.0, 90.0, 120.0, 160.0)  # errors 0.2, 0.8, 1.2, 1.8, 2.4, 3.2 px
POINTS = torch.tensor([[x, y] for x in XS for y in (10.0, 50.0, 90.0)])


def data() -> BenchmarkData:
    return BenchmarkData(
        "hpatches", "all", NAMES, ("H_0to1",), {"mode": "none"}, ("all", "i", "v"), group_of=lambda n: n[0]
    )


def batch() -> dict:
    """Three 100 x 200 pairs with H_0to1 = identity; the last one gets no matches."""
    return {
        "image0": torch.zeros(3, 3, 100, 200),
        "name": NAMES,
        "H_0to1": torch.eye(3).expand(3, 3, 3),
        "size0": torch.tensor([[100, 200]] * 3),
        "size1": torch.tensor([[100, 200]] * 3),
        "scale0": torch.ones(3, 2),
        "scale1": torch.ones(3, 2),
    }


def matches() -> Matches:
    moved = POINTS * torch.tensor([1.02, 1.0])
    n = len(POINTS)
    return Matches(POINTS.repeat(2, 1), moved.repeat(2, 1), torch.ones(2 * n), torch.tensor([0] * n + [1] * n))


def run(quirks: bool) -> tuple[dict, list[dict]]:
    benchmark = benchmark_factory("hpatches_ime")(data=data(), ime_quirks=quirks)
    records = benchmark.update(batch(), matches())
    return benchmark.compute(), records


def test_ime_protocol_without_quirks_by_hand():
    metrics, records = run(quirks=False)
    # per pair: MMA@1 = 6/18 (errors 0.2, 0.8), @2 = 12/18, @3 = 15/18, @4 = 1; the third pair has none: 0
    assert records[0]["mma@1"] == pytest.approx(1 / 3) and records[2]["mma@1"] == 0.0
    assert metrics["mma@1"] == pytest.approx((1 / 3 + 1 / 3) / 3)
    assert metrics["mma@3"] == pytest.approx((15 / 18 + 15 / 18) / 3)
    assert metrics["v/mma@2"] == pytest.approx((2 / 3 + 0) / 2) and metrics["num_pairs"] == 3
    # MAGSAC recovers x' = 1.02 x: mean error of the corners (0,0), (199,0), (0,99), (199,99) = 0.02 * 199 / 2 = 1.99
    assert records[0]["h_error"] == pytest.approx(1.99, abs=1e-4) and records[2]["h_error"] == float("inf")
    assert metrics["hacc@1"] == 0.0 and metrics["hacc@2"] == pytest.approx(2 / 3)


def test_ime_quirks_by_hand():
    metrics, records = run(quirks=True)
    # MMA rounded per pair to 3 decimals: 0.333, 0.667, 0.833; the last pair (v_c) is left out of every aggregate
    assert records[0]["mma@1"] == 0.333 and records[0]["mma@2"] == 0.667 and records[0]["mma@3"] == 0.833
    assert metrics["num_pairs"] == 2 and metrics["v/num_pairs"] == 1 and metrics["i/num_pairs"] == 1
    assert metrics["mma@1"] == pytest.approx(0.333) and metrics["v/mma@3"] == pytest.approx(0.833)
    assert [r["in_aggregate"] for r in records] == [True, True, False]
    # swapped corners (x, y) = (0,0), (0,199), (99,0), (99,199): mean error 0.02 * 99 / 2 = 0.99
    assert records[0]["h_error"] == pytest.approx(0.99, abs=1e-4)
    assert metrics["hacc@1"] == 1.0


def test_ime_spec_records_the_estimator_and_the_quirks():
    spec = benchmark_factory("hpatches_ime")(data=data(), ime_quirks=True).spec()
    estimator = spec["homography"]["estimator"]
    assert (estimator["method"], estimator["threshold"], estimator["max_iters"], estimator["confidence"]) == (
        "usac_magsac",
        3.0,
        5000,
        0.9999,
    )
    assert spec["benchmark"] == "hpatches_ime" and set(spec["ime_quirks"]) == {"corners", "subsets", "mma_rounding"}
    assert spec["main_metric"] == {"name": "mma@3", "mode": "max"}
    assert benchmark_factory("hpatches_ime")(data=data()).spec()["ime_quirks"] is False


def test_estimator_registry_names_choices_and_takes_new_methods():
    with pytest.raises(ValueError, match="usac_magsac"):
        HomographyEstimator(method="magsac++")
    register_method("my_ransac", method_flag("ransac"))
    H = HomographyEstimator(method="my_ransac", threshold=1.0)(POINTS, POINTS * torch.tensor([1.02, 1.0]))
    assert torch.allclose(H, torch.diag(torch.tensor([1.02, 1.0, 1.0], dtype=torch.float64)), atol=1e-6)
