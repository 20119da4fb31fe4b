"""DenseFlowBenchmark, dense HPatches (real CSVs, fixture images) and synthetic flow against hand-computed values."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.benchmarks.dense_flow import DenseFlowBenchmark
from corrlab.datamodules.collate import collate_pairs
from corrlab.datamodules.hpatches_dense import HPatchesDenseDataModule
from corrlab.datamodules.synthetic import homography_flow
from corrlab.dense_sampling import grid_points
from corrlab.matches import Matches
from tests.conftest import shared_data


def flow_batch() -> dict:
    """Two 4 x 5 pairs; GT flow (+1, 0) everywhere; pair 0 valid everywhere but column 4, pair 1 only row 0."""
    valid = torch.zeros(2, 4, 5, dtype=torch.bool)
    valid[0, :, :4] = True
    valid[1, 0] = True
    return {
        "image0": torch.zeros(2, 3, 4, 5),
        "name": ["a", "b"],
        "flow": torch.tensor([1.0, 0.0]).expand(2, 4, 5, 2),
        "flow_valid": valid,
    }


def test_dense_flow_aepe_and_pck_by_hand():
    grid = grid_points((4, 5), (4, 5)).reshape(4, 5, 2)
    warp = (grid + torch.tensor([1.0, 0.0])).expand(2, 4, 5, 2).clone()
    warp[0, 0, 0, 0] += 2.0  # pair 0: one pixel 2 px off, one 4 px off (x), 14 exact
    warp[0, 1, 1, 1] += 4.0
    warp[1, 0, :2, 1] += 6.0  # pair 1: 2 of its 5 pixels 6 px off
    warp[0, 3, 4] = float("nan")  # an invalid pixel: never read
    benchmark = DenseFlowBenchmark(BenchmarkData("t", "test", ["a", "b"], ("flow", "flow_valid"), {}))
    records = benchmark.update(flow_batch(), Matches.dense(warp))
    assert records[0]["aepe"] == pytest.approx(6 / 16) and records[1]["aepe"] == pytest.approx(12 / 5)
    metrics = benchmark.compute()
    assert metrics["aepe"] == pytest.approx((6 / 16 + 12 / 5) / 2)
    assert metrics["pck@1"] == pytest.approx((14 / 16 + 3 / 5) / 2) and metrics["pck@3"] == pytest.approx(
        (15 / 16 + 3 / 5) / 2
    )
    assert metrics["pck_pooled@5"] == pytest.approx(19 / 21) and metrics["pck_pooled@1"] == pytest.approx(17 / 21)
    assert benchmark.main_metric == "aepe" and benchmark.mode == "min"


def test_a_half_resolution_warp_is_sampled_in_its_frame_or_refused():
    grid = grid_points((2, 3), (4, 6)).reshape(1, 2, 3, 2)  # cell centres of a 2 x 3 grid over a 4 x 6 image
    warp = grid + torch.tensor([1.0, 0.0])  # an affine warp: bilinear sampling is exact inside the grid
    batch = {"image0": torch.zeros(1, 3, 4, 6), "name": ["a"], "flow": torch.tensor([1.0, 0.0]).expand(1, 4, 6, 2)}
    batch["flow_valid"] = torch.zeros(1, 4, 6, dtype=torch.bool)
    batch["flow_valid"][0, 1:3, 1:5] = True  # pixels between the cell centres (0.5..4.5, 0.5..2.5)
    data = BenchmarkData("t", "test", ["a"], ("flow", "flow_valid"), {})
    framed = Matches.dense(warp, warp_frame=(4, 6))
    assert DenseFlowBenchmark(data).update(batch, framed)[0]["aepe"] == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="warp_frame"):
        DenseFlowBenchmark(data).update(batch, Matches.dense(warp))


def test_sparse_matches_are_read_through_the_nearest_match():
    batch = flow_batch()
    matches = Matches(
        torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.5]]), torch.ones(1), torch.zeros(1, dtype=torch.long)
    )
    records = DenseFlowBenchmark(BenchmarkData("t", "test", ["a", "b"], ("flow", "flow_valid"), {})).update(
        batch, matches
    )
    assert records[0]["aepe"] == pytest.approx(0.5) and records[1]["aepe"] == float("inf")  # pair 1 has no match


def test_synthetic_flow_follows_the_homography():
    H = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    flow, valid = homography_flow(H, (4, 5), (4, 5))
    assert torch.equal(flow, torch.tensor([2.0, -1.0]).expand(4, 5, 2))
    # x + 2 <= 4 and y - 1 >= 0: columns 0..2, rows 1..3
    assert valid.sum() == 9 and valid[1:, :3].all()


def write_dense_fixture(root: Path, sequences: list[str]) -> tuple[Path, list[dict]]:
    """Images of the CSV's sizes for some of the real CSV's sequences (in the release layout)."""
    rows = list(csv.DictReader(open(shared_data("hpatches", "glunet_csv", "hpatches_all.csv"))))
    rows = [r for r in rows if r["obj"] in sequences]
    rng = np.random.default_rng(0)
    for row in rows:
        folder = root / row["obj"]
        folder.mkdir(parents=True, exist_ok=True)
        h, w = int(float(row["Him"])), int(float(row["Wim"]))
        for k in (1, int(row["im2"])):
            path = folder / f"{k}.ppm"
            if not path.exists():
                size = (h, w) if k == 1 else (h - 10 * k, w - 6 * k)  # image k smaller than image 1, as some are
                cv2.imwrite(str(path), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    return root, rows


def test_dense_hpatches_ground_truth_at_240_by_hand(tmp_path):
    csv_dir = shared_data("hpatches", "glunet_csv")
    root, rows = write_dense_fixture(tmp_path / "hp", ["v_london"])
    dm = HPatchesDenseDataModule(str(root), str(csv_dir), image_size=[240, 240], on_missing="skip")
    dataset = dm.dataset("test")
    assert dataset.pair_names() == [f"v_london/1-{k}" for k in range(2, 7)] and len(dataset.skipped) == 290
    row = rows[2]  # v_london 1 -> 4
    sample = dataset[2]
    assert sample["image0"].shape == (3, 240, 240) and sample["name"] == "v_london/1-4"
    H = np.array([float(row[c]) for c in list(row)[5:]]).reshape(3, 3)
    h_ref, w_ref = int(float(row["Him"])), int(float(row["Wim"]))
    h_trg, w_trg = h_ref - 40, w_ref - 24
    for x, y in ((0, 0), (100, 37), (239, 239), (12, 200)):
        # target pixel at 240 -> original target pixel -> H^-1 -> original reference pixel -> its 240 pixel
        q = np.linalg.solve(H, [x * w_trg / 240, y * h_trg / 240, 1.0])
        expected = np.array([q[0] / q[2] * 240 / w_ref, q[1] / q[2] * 240 / h_ref])
        assert sample["flow"][y, x].numpy() == pytest.approx(expected - [x, y], abs=1e-3)
        inside = 0 <= expected[0] <= 239 and 0 <= expected[1] <= 239
        assert bool(sample["flow_valid"][y, x]) == inside
    assert sample["size0"].tolist() == [h_trg, w_trg] and sample["size1"].tolist() == [h_ref, w_ref]


@pytest.mark.slow
def test_dense_hpatches_at_original_size_and_an_exact_warp_score_zero(tmp_path):
    root, _ = write_dense_fixture(tmp_path / "hp", ["v_bird"])
    dm = HPatchesDenseDataModule(str(root), str(shared_data("hpatches", "glunet_csv")), on_missing="skip")
    batch = collate_pairs([dm.dataset("test")[0]])
    h, w = batch["image0"].shape[-2:]
    assert (h, w) == tuple(batch["size0"][0].tolist())  # image k's own size
    warp = grid_points((h, w), (h, w)).reshape(1, h, w, 2) + batch["flow"]
    benchmark = dm.make_benchmark("test")
    benchmark.update(batch, Matches.dense(warp))
    metrics = benchmark.compute()
    assert metrics["aepe"] == pytest.approx(0.0, abs=1e-3) and metrics["1-2/pck@1"] == 1.0
    assert benchmark.spec()["benchmark"] == "hpatches_dense" and benchmark.spec()["main_metric"]["mode"] == "min"
