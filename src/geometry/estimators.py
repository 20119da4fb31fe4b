"""Robust estimators a benchmark names in its config: OpenCV methods by name, extensible with `register_method`.

    estimator:
      _target_: corrlab.geometry.estimators.HomographyEstimator
      method: usac_magsac      # a key of METHODS (or one a user registered)
      threshold: 3.0
      max_iters: 5000
      confidence: 0.9999

A user adds a method with `register_method("mine", flag)` (an OpenCV flag) or writes an estimator of their
own: any `_target_` with `__call__(kpts0, kpts1) -> H | None` and `spec() -> dict` fits a homography benchmark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

# name -> OpenCV flag for cv2.findHomography / cv2.findEssentialMat
METHODS: dict[str, int] = {
    "ransac": cv2.RANSAC,
    "lmeds": cv2.LMEDS,
    "rho": cv2.RHO,
    "usac_default": cv2.USAC_DEFAULT,
    "usac_magsac": cv2.USAC_MAGSAC,
    "usac_accurate": cv2.USAC_ACCURATE,
    "usac_prosac": cv2.USAC_PROSAC,
    "usac_fast": cv2.USAC_FAST,
}


def register_method(name: str, flag: int) -> None:
    """Make an OpenCV robust-estimation flag available to configs under `name`."""
    METHODS[name] = flag


def method_flag(name: str) -> int:
    if name not in METHODS:
        raise ValueError(f"unknown robust estimator '{name}'; choose one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


@dataclass
class HomographyEstimator:
    """cv2.findHomography(kpts0, kpts1, method, threshold, maxIters, confidence) with a fixed RNG seed;
    None with fewer than 4 matches, no solution or a non-finite H."""

    method: str = "ransac"
    threshold: float = 2.0
    max_iters: int = 2000
    confidence: float = 0.995
    seed: int = 0

    def __post_init__(self) -> None:
        method_flag(self.method)

    def __call__(self, kpts0: Tensor, kpts1: Tensor) -> Tensor | None:
        if kpts0.shape[0] < 4:
            return None
        cv2.setRNGSeed(self.seed)
        H, _ = cv2.findHomography(
            kpts0.detach().cpu().double().numpy(),
            kpts1.detach().cpu().double().numpy(),
            method_flag(self.method),
            ransacReprojThreshold=self.threshold,
            maxIters=self.max_iters,
            confidence=self.confidence,
        )
        if H is None or not np.isfinite(H).all():
            return None
        return torch.from_numpy(H)

    def spec(self) -> dict:
        return {"function": "cv2.findHomography(kpts0, kpts1)", **asdict(self)}


@dataclass
class EssentialEstimator:
    """The essential-matrix estimator of the relative-pose protocol: cv2.findEssentialMat on K-normalised
    points with `method`, the pixel threshold divided by the mean focal length, then cv2.recoverPose."""

    method: str = "ransac"
    threshold_px: float = 0.5
    confidence: float = 0.99999
    seed: int = 0

    def __post_init__(self) -> None:
        method_flag(self.method)

    def spec(self) -> dict:
        return {
            "function": "cv2.findEssentialMat on K-normalised points + cv2.recoverPose, best of the E candidates",
            "threshold_normalised": "threshold_px / mean(fx0, fy0, fx1, fy1) in the evaluation frame",
            "repeats": 1,
            **asdict(self),
        }
