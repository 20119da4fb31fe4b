"""Epipolar geometry from known cameras: fundamental matrix and point-to-epipolar-line distances."""

from __future__ import annotations

import torch
from kornia.geometry.epipolar import (
    essential_from_Rt,
    fundamental_from_essential,
    sampson_epipolar_distance,
    symmetrical_epipolar_distance,
)
from torch import Tensor


def fundamental_from_pose(K0: Tensor, K1: Tensor, T_0to1: Tensor) -> Tensor:
    """F such that x1^T F x0 = 0, for cameras K0, K1 and the relative pose T_0to1 (4x4, cam0 -> cam1)."""
    identity = torch.eye(3, dtype=T_0to1.dtype, device=T_0to1.device)
    zero = torch.zeros(3, 1, dtype=T_0to1.dtype, device=T_0to1.device)
    E = essential_from_Rt(identity[None], zero[None], T_0to1[None, :3, :3], T_0to1[None, :3, 3:])
    return fundamental_from_essential(E, K0[None].to(E), K1[None].to(E))[0]


def sampson_distance(kpts0: Tensor, kpts1: Tensor, F: Tensor, squared: bool = False) -> Tensor:
    """Sampson distance (pixels, or pixels^2 when squared) of matches (N, 2) under F."""
    return sampson_epipolar_distance(kpts0[None], kpts1[None], F[None].to(kpts0), squared=squared)[0]


def symmetric_epipolar_distance(kpts0: Tensor, kpts1: Tensor, F: Tensor, squared: bool = False) -> Tensor:
    """Symmetric point-to-line distance of matches (N, 2) under F."""
    return symmetrical_epipolar_distance(kpts0[None], kpts1[None], F[None].to(kpts0), squared=squared)[0]
