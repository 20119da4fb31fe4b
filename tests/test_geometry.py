"""Geometry round trips and known-geometry checks, plus the real MegaDepth pair."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from corrlab.geometry.depth import reproject_points
from corrlab.geometry.epipolar import fundamental_from_pose, sampson_distance, symmetric_epipolar_distance
from corrlab.geometry.homography import (
    corner_error,
    estimate_homography,
    symmetric_transfer_error,
    transfer_error,
    warp_points,
)
from corrlab.geometry.pose import estimate_relative_pose, pose_error, relative_pose_error
from corrlab.geometry.scaling import homography_to_original, homography_to_resized, to_original, to_resized
from tests.conftest import shared_data

H = torch.tensor([[0.9, 0.1, 12.0], [-0.05, 1.1, -7.0], [1e-4, -2e-4, 1.0]], dtype=torch.float64)


def random_points(n: int = 50, size: float = 300.0, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * size


def rotation(axis: list[float], degrees: float) -> torch.Tensor:
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    K = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=torch.float64)
    a = math.radians(degrees)
    return torch.eye(3, dtype=torch.float64) + math.sin(a) * K + (1 - math.cos(a)) * K @ K


def test_warp_by_homography_and_back_is_identity():
    p = random_points()
    assert torch.allclose(warp_points(torch.linalg.inv(H), warp_points(H, p)), p, atol=1e-9)


def test_transfer_errors_of_a_known_shift():
    p0 = random_points()
    p1 = warp_points(H, p0) + torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert torch.allclose(transfer_error(H, p0, p1), torch.full((50,), 5.0, dtype=torch.float64))
    assert torch.allclose(
        symmetric_transfer_error(H, p0, warp_points(H, p0)), torch.zeros(50, dtype=torch.float64), atol=1e-9
    )


def test_corner_error_of_a_translation_is_its_length():
    shift = torch.tensor([[1, 0, 3.0], [0, 1, 4.0], [0, 0, 1]], dtype=torch.float64)
    assert corner_error(shift @ H, H.clone(), 480, 640) == pytest.approx(5.0, abs=1e-9)
    # a scaling about the origin moves each corner pixel centre (0,0), (639,0), (639,479), (0,479) by its own length
    double = torch.diag(torch.tensor([2.0, 2.0, 1.0], dtype=torch.float64))
    by_hand = (0 + 639 + math.hypot(639, 479) + 479) / 4
    assert corner_error(double, torch.eye(3, dtype=torch.float64), 480, 640) == pytest.approx(by_hand, abs=1e-9)
    assert corner_error(shift, torch.eye(3, dtype=torch.float64), 480, 640) == pytest.approx(5.0)
    assert corner_error(None, H, 480, 640) == math.inf


def test_ransac_recovers_a_homography_despite_outliers():
    p0 = random_points(200)
    p1 = warp_points(H, p0)
    p1[:40] += 50.0  # 20 % gross outliers
    H_est = estimate_homography(p0, p1, threshold=1.0)
    assert corner_error(H_est, H, 300, 300) < 1e-3
    assert estimate_homography(p0[:3], p1[:3], threshold=1.0) is None


def test_resize_conventions_round_trip():
    p = random_points()
    s0, s1 = torch.tensor([0.5, 0.4], dtype=torch.float64), torch.tensor([1.5, 1.25], dtype=torch.float64)
    assert torch.allclose(to_original(to_resized(p, s0), s0), p)
    # a pixel centre of the original maps to the centre of the resized area it covers
    assert to_resized(torch.tensor([[0.5, 0.5]]), torch.tensor([0.5, 0.5])).tolist() == [[0.0, 0.0]]
    H_small = homography_to_resized(H, s0, s1)
    assert torch.allclose(warp_points(H_small, to_resized(p, s0)), to_resized(warp_points(H, p), s1), atol=1e-9)
    assert torch.allclose(homography_to_original(H_small, s0, s1), H, atol=1e-12)


def test_epipolar_distances_of_a_rectified_pair():
    K = torch.tensor([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]], dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64)
    T[0, 3] = -0.2  # pure horizontal baseline: epipolar lines are the image rows
    F = fundamental_from_pose(K, K, T)
    p0 = torch.tensor([[100.0, 50.0], [400.0, 300.0]], dtype=torch.float64)
    on_line = p0 + torch.tensor([[-30.0, 0.0], [-5.0, 0.0]], dtype=torch.float64)
    off_line = on_line + torch.tensor([[0.0, 2.0], [0.0, 2.0]], dtype=torch.float64)
    assert torch.allclose(sampson_distance(p0, on_line, F), torch.zeros(2, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(sampson_distance(p0, off_line, F), torch.full((2,), 2 / math.sqrt(2), dtype=torch.float64))
    assert torch.allclose(sampson_distance(p0, off_line, F, squared=True), torch.full((2,), 2.0, dtype=torch.float64))
    assert torch.allclose(
        symmetric_epipolar_distance(p0, off_line, F), torch.full((2,), 2 * math.sqrt(2), dtype=torch.float64)
    )


def synthetic_two_view(n: int = 300, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]], dtype=torch.float64)
    X = torch.cat(
        [
            torch.rand(n, 2, generator=g, dtype=torch.float64) * 4 - 2,
            torch.rand(n, 1, generator=g, dtype=torch.float64) * 4 + 4,
        ],
        1,
    )
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = rotation([0.2, 1.0, 0.1], 10.0)
    T[:3, 3] = torch.tensor([-1.0, 0.1, 0.2], dtype=torch.float64)
    X1 = X @ T[:3, :3].T + T[:3, 3]
    project = lambda P: (P @ K.T)[:, :2] / P[:, 2:]  # noqa: E731
    return project(X), project(X1), K, T


def test_relative_pose_is_recovered_from_exact_matches():
    p0, p1, K, T = synthetic_two_view()
    R, t, inliers = estimate_relative_pose(p0, p1, K, K, threshold_px=0.5)
    err_R, err_t = relative_pose_error(T, R, t)
    assert err_R < 0.05 and err_t < 0.1
    assert inliers.float().mean() > 0.95
    assert pose_error(T, p0[:4], p1[:4], K, K) == math.inf


def test_translation_error_is_folded():
    _, _, _, T = synthetic_two_view()
    assert relative_pose_error(T, T[:3, :3], -T[:3, 3]) == pytest.approx((0.0, 0.0), abs=1e-5)
    axis = torch.linalg.cross(T[:3, 3], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))  # perpendicular to t
    flipped_30 = rotation(axis.tolist(), 150.0) @ T[:3, 3]
    assert relative_pose_error(T, T[:3, :3], flipped_30)[1] == pytest.approx(30.0, abs=1e-6)


def test_depth_reprojection_on_the_real_megadepth_pair():
    root = shared_data("megadepth", "loftr_pytorch_sample")
    info = np.load(root / "sample.npz", allow_pickle=True)
    (i0, i1), *_ = info["pair_infos"][0]
    names = [str(p).split("/")[-1] for p in info["image_paths"][[i0, i1]]]
    depths = [torch.from_numpy(h5py.File(root / n.replace(".jpg", ".h5"), "r")["depth"][()]).double() for n in names]
    K0, K1 = (torch.from_numpy(info["intrinsics"][i]).double() for i in (i0, i1))
    P0, P1 = (torch.from_numpy(info["poses"][i]).double() for i in (i0, i1))
    T_0to1 = P1 @ torch.linalg.inv(P0)
    h, w = depths[0].shape
    ys, xs = torch.meshgrid(torch.arange(8, h, 16.0), torch.arange(8, w, 16.0), indexing="ij")
    p0 = torch.stack([xs.flatten(), ys.flatten()], 1).double()
    p1, valid = reproject_points(p0, depths[0], K0, T_0to1, K1, depths[1])
    assert valid.sum() > 500
    # back to image 0 through depth1 and the inverse pose: lands on the start point
    back, back_valid = reproject_points(p1[valid], depths[1], K1, torch.linalg.inv(T_0to1), K0, depths[0])
    error = (back - p0[valid]).norm(dim=1)[back_valid]
    assert error.median() < 1.0
    # the depth-derived matches agree with the poses: on their epipolar lines to a fraction of a pixel
    F = fundamental_from_pose(K0, K1, T_0to1)
    assert sampson_distance(p0[valid], p1[valid], F).max() < 1e-3
