"""Ground-truth correspondences from depth and pose: reproject image-0 points into image 1."""

from __future__ import annotations

import torch
from kornia.geometry.camera.perspective import project_points, unproject_points
from kornia.geometry.linalg import transform_points
from torch import Tensor


def sample_depth(depth: Tensor, points: Tensor) -> Tensor:
    """Depth (H, W) at the nearest pixel of each point (N, 2); 0 outside the image."""
    h, w = depth.shape
    xy = points.round().long()
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    values = torch.zeros(points.shape[0], dtype=depth.dtype, device=depth.device)
    values[inside] = depth[xy[inside, 1], xy[inside, 0]]
    return values


def reproject_points(
    kpts0: Tensor,
    depth0: Tensor,
    K0: Tensor,
    T_0to1: Tensor,
    K1: Tensor,
    depth1: Tensor | None = None,
    max_relative_depth_error: float = 0.2,
) -> tuple[Tensor, Tensor]:
    """Map points of image 0 into image 1 through depth0 and the pose T_0to1 (4x4, cam0 -> cam1).

    Returns (kpts1 (N, 2), valid (N,)).  A point is valid when its depth is known (> 0), it lands in
    front of camera 1 and, when depth1 is given, inside image 1 with a depth that agrees with depth1
    within `max_relative_depth_error` (the occlusion check of LoFTR / D2-Net).
    """
    z0 = sample_depth(depth0, kpts0)
    points3d = unproject_points(kpts0, z0[:, None], K0.to(kpts0))
    points3d_1 = transform_points(T_0to1[None].to(kpts0), points3d[None])[0]
    z1 = points3d_1[:, 2]
    kpts1 = project_points(points3d_1, K1.to(kpts0))
    valid = (z0 > 0) & (z1 > 1e-6)
    if depth1 is not None:
        h, w = depth1.shape
        inside = (kpts1[:, 0] > -0.5) & (kpts1[:, 0] < w - 0.5) & (kpts1[:, 1] > -0.5) & (kpts1[:, 1] < h - 0.5)
        observed = sample_depth(depth1, kpts1)
        consistent = (observed > 0) & ((observed - z1).abs() < max_relative_depth_error * z1.abs())
        valid = valid & inside & consistent
    return kpts1, valid
