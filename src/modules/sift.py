"""SIFT (OpenCV) with Lowe's ratio test and mutual nearest neighbours: the training-free baseline row."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from corrlab.matches import Matches
from corrlab.modules.base import MatchingModule


class SIFTMatcher(MatchingModule):
    """cv2.SIFT keypoints and descriptors; a match survives the ratio test and, if `mutual`, is the
    nearest neighbour both ways.  Scores are 1 - ratio (higher is better)."""

    requires_weights = False

    def __init__(
        self, max_keypoints: int = 0, ratio: float = 0.8, mutual: bool = True, contrast_threshold: float = 0.04
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.max_keypoints = max_keypoints
        self.ratio = ratio
        self.mutual = mutual
        self.contrast_threshold = contrast_threshold

    def detect(self, image: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 2) and descriptors (N, 128) of a 3 x H x W RGB image in [0, 1], on OpenCV's luminance
        grey (0.299 R + 0.587 G + 0.114 B, as cv2.imread(..., IMREAD_GRAYSCALE) and published SIFT baselines)."""
        rgb = (image.permute(1, 2, 0) * 255).round().clamp(0, 255).byte().cpu().numpy()
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        sift = cv2.SIFT_create(nfeatures=self.max_keypoints, contrastThreshold=self.contrast_threshold)
        keypoints, descriptors = sift.detectAndCompute(gray, None)
        if descriptors is None:
            return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
        return np.array([k.pt for k in keypoints], np.float32), descriptors

    def match_descriptors(self, desc0: np.ndarray, desc1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices (i0, i1) and scores of the accepted matches."""
        if len(desc0) < 2 or len(desc1) < 2:
            return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
        matcher = cv2.BFMatcher(cv2.NORM_L2)
        forward = matcher.knnMatch(desc0, desc1, k=2)
        pairs, scores = [], []
        best_backward = None
        if self.mutual:
            best_backward = np.array([m[0].trainIdx for m in matcher.knnMatch(desc1, desc0, k=1)])
        for m in forward:
            first, second = m[0], m[1]
            ratio = first.distance / max(second.distance, 1e-12)
            if ratio >= self.ratio:
                continue
            if best_backward is not None and best_backward[first.trainIdx] != first.queryIdx:
                continue
            pairs.append((first.queryIdx, first.trainIdx))
            scores.append(1.0 - ratio)
        return np.array(pairs, np.int64).reshape(-1, 2), np.array(scores, np.float32)

    @torch.inference_mode()
    def match(self, batch: dict) -> Matches:
        device = batch["image0"].device
        parts = []
        for b in range(batch["image0"].shape[0]):
            kpts0, desc0 = self.detect(batch["image0"][b])
            kpts1, desc1 = self.detect(batch["image1"][b])
            pairs, scores = self.match_descriptors(desc0, desc1)
            parts.append(
                Matches(
                    kpts0=torch.from_numpy(kpts0[pairs[:, 0]]).to(device),
                    kpts1=torch.from_numpy(kpts1[pairs[:, 1]]).to(device),
                    scores=torch.from_numpy(scores).to(device),
                    batch_idx=torch.full((len(pairs),), b, dtype=torch.long, device=device),
                )
            )
        return Matches.concat(parts)
