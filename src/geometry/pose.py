"""Relative pose from matches (OpenCV essential-matrix RANSAC + recoverPose) and its angular error."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from kornia.metrics import pose_errors
from torch import Tensor

from corrlab.geometry.estimators import method_flag


def estimate_relative_pose(
    kpts0: Tensor,
    kpts1: Tensor,
    K0: Tensor,
    K1: Tensor,
    threshold_px: float = 0.5,
    confidence: float = 0.99999,
    seed: int = 0,
    method: str = "ransac",
) -> tuple[Tensor, Tensor, Tensor] | None:
    """(R, t, inlier mask) of camera 1 relative to camera 0, or None with < 5 matches / no solution.

    Points are normalised by the intrinsics; the pixel threshold is divided by the mean focal length
    of both cameras (the LoFTR / glue-factory protocol).  Among the essential-matrix candidates the
    one whose recoverPose keeps the most points wins.  `method`: a key of corrlab.geometry.estimators.METHODS.
    """
    if kpts0.shape[0] < 5:
        return None
    K0n, K1n = K0.double().cpu().numpy(), K1.double().cpu().numpy()
    p0 = (kpts0.double().cpu().numpy() - K0n[[0, 1], [2, 2]]) / K0n[[0, 1], [0, 1]]
    p1 = (kpts1.double().cpu().numpy() - K1n[[0, 1], [2, 2]]) / K1n[[0, 1], [0, 1]]
    mean_focal = np.mean([K0n[0, 0], K0n[1, 1], K1n[0, 0], K1n[1, 1]])
    cv2.setRNGSeed(seed)
    E, mask = cv2.findEssentialMat(
        p0, p1, np.eye(3), threshold=threshold_px / mean_focal, prob=confidence, method=method_flag(method)
    )
    if E is None:
        return None
    best = None
    for candidate in np.split(E, len(E) // 3):
        count, R, t, _ = cv2.recoverPose(candidate, p0, p1, np.eye(3), 1e9, mask=mask)
        if best is None or count > best[0]:
            best = (count, R, t[:, 0], mask.ravel() > 0)
    _, R, t, inliers = best
    return torch.from_numpy(R), torch.from_numpy(t), torch.from_numpy(inliers)


def relative_pose_error(T_0to1: Tensor, R: Tensor, t: Tensor) -> tuple[float, float]:
    """(rotation error, translation-direction error) in degrees; t folded to min(e, 180 - e)."""
    estimate = torch.eye(4, dtype=torch.float64)
    estimate[:3, :3] = R.double()
    estimate[:3, 3] = t.double()
    errors = pose_errors(estimate[None], T_0to1.double().cpu()[None], fold_translation=True)
    return float(errors["R_err"][0]), float(errors["t_err"][0])


def pose_error(T_0to1: Tensor, kpts0: Tensor, kpts1: Tensor, K0: Tensor, K1: Tensor, **ransac) -> float:
    """max(rotation error, translation error) of the estimated pose; inf when estimation fails."""
    estimate = estimate_relative_pose(kpts0, kpts1, K0, K1, **ransac)
    if estimate is None:
        return float("inf")
    R, t, _ = estimate
    return max(relative_pose_error(T_0to1, R, t))
