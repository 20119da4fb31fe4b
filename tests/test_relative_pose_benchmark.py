"""Relative-pose protocol: the oracle scores perfectly; known pose errors give the hand-computed AUC."""

from __future__ import annotations

import math

import pytest
import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.benchmarks.relative_pose import RelativePoseBenchmark
from corrlab.matches import Matches

K = torch.tensor([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]], dtype=torch.float64)


def rotation_z(degrees: float) -> torch.Tensor:
    a = math.radians(degrees)
    return torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]], dtype=torch.float64)


def ground_truth() -> torch.Tensor:
    a = math.radians(10.0)
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = torch.tensor(
        [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=torch.float64
    )
    T[:3, 3] = torch.tensor([1.0, 0.1, 0.2], dtype=torch.float64)
    return T


def matches_under(T: torch.Tensor, b: int, count: int = 300) -> Matches:
    """Noise-free projections of random 3-D points (depth 5..15) into camera 0 and, through T, camera 1."""
    g = torch.Generator().manual_seed(b)
    points = torch.rand(count, 3, generator=g, dtype=torch.float64) * torch.tensor([8.0, 6.0, 10.0]) + torch.tensor(
        [-4.0, -3.0, 5.0]
    )
    project = lambda X: (X @ K.T)[:, :2] / X[:, 2:]  # noqa: E731
    kpts0, kpts1 = project(points), project(points @ T[:3, :3].T + T[:3, 3])
    return Matches(kpts0.float(), kpts1.float(), torch.ones(count), torch.full((count,), b, dtype=torch.long))


def batch_of(count: int) -> dict:
    return {
        "image0": torch.zeros(count, 3, 480, 640),
        "name": [f"pair{b}" for b in range(count)],
        "K0": K.float().expand(count, 3, 3),
        "K1": K.float().expand(count, 3, 3),
        "T_0to1": ground_truth().float().expand(count, 4, 4),
    }


def pose_data(names: list[str]) -> BenchmarkData:
    return BenchmarkData("synthetic", "test", names, ("K0", "K1", "T_0to1"), resize={"mode": "none"})


def test_matches_from_the_true_pose_score_perfectly():
    benchmark = RelativePoseBenchmark(pose_data(["pair0", "pair1"]))
    records = benchmark.update(batch_of(2), Matches.concat([matches_under(ground_truth(), b) for b in range(2)]))
    assert all(r["pose_error"] < 0.01 and r["num_inliers"] == 300 for r in records)
    metrics = benchmark.compute()
    assert metrics["pose_auc@5"] > 0.998 and metrics["pose_acc@5"] == 1.0 and metrics["num_pairs"] == 2


def test_known_rotation_errors_give_the_hand_computed_auc():
    """Pairs whose matches follow the GT pose rotated by 2, 7, 15, 30 degrees (translation unchanged, so
    the error is exactly that angle) plus one pair with 4 matches (failure: inf).  By hand, with the
    trapezoid through (0, 0), (2, .2), (7, .4), (15, .6), (30, .8):
    AUC@5 = (0.2 + 0.2*3) / 5 = 0.16;  AUC@10 = (0.2 + 1.5 + 0.4*3) / 10 = 0.29;  AUC@20 = (0.2 + 1.5 + 4 + 3) / 20 = 0.435."""
    parts = []
    for b, angle in enumerate([2.0, 7.0, 15.0, 30.0]):
        T = ground_truth().clone()
        T[:3, :3] = rotation_z(angle) @ T[:3, :3]
        parts.append(matches_under(T, b))
    failed = matches_under(ground_truth(), 4, count=4)
    benchmark = RelativePoseBenchmark(pose_data([f"pair{b}" for b in range(5)]))
    records = benchmark.update(batch_of(5), Matches.concat(parts + [failed]))
    assert [r["pose_error"] for r in records[:4]] == pytest.approx([2.0, 7.0, 15.0, 30.0], abs=1e-3)
    assert records[4]["pose_error"] == math.inf and records[4]["num_inliers"] == 0
    metrics = benchmark.compute()
    assert metrics["pose_auc@5"] == pytest.approx(0.16, abs=1e-4)
    assert metrics["pose_auc@10"] == pytest.approx(0.29, abs=1e-4)
    assert metrics["pose_auc@20"] == pytest.approx(0.435, abs=1e-4)
    assert [metrics[f"pose_acc@{t}"] for t in (5, 10, 20)] == pytest.approx([0.2, 0.4, 0.6])
