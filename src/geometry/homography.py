"""Homography transfer, transfer errors, corner error and robust estimation (OpenCV, see estimators.py)."""

from __future__ import annotations

import torch
from kornia.geometry.linalg import transform_points
from torch import Tensor

from corrlab.geometry.estimators import HomographyEstimator


def warp_points(H: Tensor, points: Tensor) -> Tensor:
    """Apply H (3, 3) to points (N, 2)."""
    return transform_points(H[None].to(points), points[None])[0]


def transfer_error(H_0to1: Tensor, kpts0: Tensor, kpts1: Tensor) -> Tensor:
    """One-directional error ||H p0 - p1|| (the D2-Net MMA protocol), in image-1 pixels."""
    return (warp_points(H_0to1, kpts0) - kpts1).norm(dim=-1)


def symmetric_transfer_error(H_0to1: Tensor, kpts0: Tensor, kpts1: Tensor) -> Tensor:
    """Mean of the forward and backward transfer errors (glue-factory's sym_homography_error)."""
    forward = transfer_error(H_0to1, kpts0, kpts1)
    backward = transfer_error(torch.linalg.inv(H_0to1), kpts1, kpts0)
    return 0.5 * (forward + backward)


def image_corners(height: int, width: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The four corner pixel centres (x, y): (0,0), (W-1,0), (W-1,H-1), (0,H-1)."""
    w, h = width - 1, height - 1
    return torch.tensor([[0, 0], [w, 0], [w, h], [0, h]], dtype=dtype)


def corner_error(H_est: Tensor | None, H_gt: Tensor, height: int, width: int, corners: Tensor | None = None) -> float:
    """Mean distance between the image-0 corners (or the given points) mapped by H_est and by H_gt; inf when
    H_est is None."""
    if H_est is None:
        return float("inf")
    corners = image_corners(height, width) if corners is None else corners.to(torch.float64)
    est = warp_points(H_est.to(torch.float64), corners)
    gt = warp_points(H_gt.to(torch.float64), corners)
    return float((est - gt).norm(dim=-1).mean())


def estimate_homography(
    kpts0: Tensor,
    kpts1: Tensor,
    threshold: float,
    max_iters: int = 2000,
    confidence: float = 0.995,
    seed: int = 0,
    method: str = "ransac",
) -> Tensor | None:
    """cv2.findHomography with a robust `method` of corrlab.geometry.estimators.METHODS; None with fewer than
    4 matches or no solution."""
    return HomographyEstimator(method, threshold, max_iters, confidence, seed)(kpts0, kpts1)
