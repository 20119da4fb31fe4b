"""MegaDepth on real files from ../shared/data/megadepth (skipped when absent)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.benchmarks.relative_pose import RelativePoseBenchmark
from corrlab.datamodules.catalog import get
from corrlab.datamodules.collate import collate_pairs
from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.megadepth import MegaDepthDataModule
from corrlab.datamodules.megadepth_dataset import MegaDepthPairs
from corrlab.datamodules.megadepth_index import megadepth1500_pairs, pair_info_pairs
from corrlab.datamodules.resize import ResizePolicy
from corrlab.geometry.depth import reproject_points
from corrlab.geometry.epipolar import fundamental_from_pose, sampson_distance
from corrlab.matches import Matches
from corrlab.modules.sift import SIFTMatcher
from tests.conftest import shared_data


def test_loftr_megadepth1500_index_parses_to_1500_pairs():
    index = megadepth1500_pairs(shared_data("megadepth", "loftr_test1500_scene_info"))
    assert len(index) == 1500 and len(set(index.pair_names())) == 1500
    assert Counter(index.pair_scenes().tolist()) == {"0015": 600, "0022": 900}
    assert all(
        str(p).startswith(("Undistorted_SfM/0015/images/", "Undistorted_SfM/0022/images/")) for p in index.images
    )
    K0, K1, T = index.cameras(0)
    assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-6) and K0[0, 0] > 0 and K1[2, 2] == 1
    assert index.overlap.min() >= 0.1 and index.overlap.max() <= 0.8


def test_verify_reports_the_missing_megadepth1500_images(tmp_path):
    (tmp_path / "megadepth_test_1500_scene_info").symlink_to(shared_data("megadepth", "loftr_test1500_scene_info"))
    report = get("megadepth").verify(tmp_path)
    checks = {c.what: c for c in report.checks if c.part == "test1500"}
    assert checks["MegaDepth-1500 pairs"].ok
    images = checks["test images (Undistorted_SfM/0015, 0022)"]
    assert (
        not images.ok and images.num_missing == 806
    )  # distinct images of the 1500 pairs and len(images.missing) == 10
    assert not report.ok("test1500") and not report.ok("train")


def test_datamodule_reads_the_real_index_and_refuses_an_empty_evaluation(tmp_path):
    dm = MegaDepthDataModule(root=str(tmp_path), test_index=str(shared_data("megadepth", "loftr_test1500_scene_info")))
    assert dm.megadepth1500_index().pair_names()[0].startswith("0022/")
    with pytest.raises(UnreadableFileError, match="1500 of 1500 pairs reference missing files"):
        dm.dataset("test")


def real_pair(size: int) -> dict:
    root = shared_data("megadepth", "loftr_pytorch_sample")
    dataset = MegaDepthPairs(
        root,
        pair_info_pairs(root / "sample.npz", scene="sample"),
        ResizePolicy("long", size),
        load_depth=True,
        on_missing="skip",
    )
    assert len(dataset) == 1 and len(dataset.skipped) == 600  # only pair_infos[0] has its images in the sample
    return dataset[0]


def test_real_pair_depth_reprojection_is_consistent_with_the_poses():
    """Every depth pixel of image 0, moved by the resized K0, T_0to1, K1, lands on image-1 depth that agrees
    within 20 % for ~98 % of them (the sample's README measured 97.9 % at full resolution)."""
    sample = real_pair(640)
    depth0 = sample["depth0"]
    h, w = depth0.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    points = torch.stack([xs.ravel(), ys.ravel()], 1)[depth0.ravel() > 0]
    _, valid = reproject_points(points, depth0, sample["K0"], sample["T_0to1"], sample["K1"], sample["depth1"])
    assert valid.float().mean() > 0.95


def test_real_pair_sift_matches_satisfy_the_epipolar_geometry_and_the_oracle_is_perfect():
    """SIFT matches (independent of the GT) have a median Sampson distance < 0.5 px under F(K0, K1, T_0to1)
    in the resized frame (measured 0.23 px), and the GT matches from depth give a ~0 pose error."""
    sample = real_pair(640)
    batch = collate_pairs([sample])
    sift = SIFTMatcher().match(batch)
    F = fundamental_from_pose(sample["K0"].double(), sample["K1"].double(), sample["T_0to1"].double())
    assert len(sift) > 100 and sampson_distance(sift.kpts0.double(), sift.kpts1.double(), F).median() < 0.5
    grid = torch.stack(torch.meshgrid(torch.arange(0, 478, 6.0), torch.arange(0, 640, 6.0), indexing="xy"), -1).reshape(
        -1, 2
    )
    kpts1, valid = reproject_points(
        grid, sample["depth0"], sample["K0"], sample["T_0to1"], sample["K1"], sample["depth1"]
    )
    oracle = Matches(
        grid[valid], kpts1[valid], torch.ones(int(valid.sum())), torch.zeros(int(valid.sum()), dtype=torch.long)
    )
    benchmark = RelativePoseBenchmark(
        BenchmarkData("megadepth", "test", [sample["name"]], ("K0", "K1", "T_0to1"), resize={})
    )
    record = benchmark.update(batch, oracle)[0]
    assert record["pose_error"] < 0.01 and benchmark.compute()["pose_auc@5"] > 0.998
    assert benchmark.update(batch, sift)[0]["pose_error"] < 5.0
