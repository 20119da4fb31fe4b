"""Semantic PCK@alpha: a keypoint is correct when its transfer error <= alpha * L (bbox or image size);
`strict` uses < instead (GeoAware-SC's comparison)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class SemanticPCK(Metric):
    """`pck@a`: mean over images of the fraction of correct keypoints; `pck_kpt@a`: pooled over all
    keypoints.  L (the threshold base) is given per image: max(bbox h, w) for SPair / AP-10k,
    max(image h, w) for PF-Pascal.  Images without keypoints are skipped.  With `strict`, correct means
    error < alpha * L (GeoAware-SC) instead of <= (DenseMatching).
    """

    full_state_update = False

    def __init__(self, alphas: Sequence[float] = (0.01, 0.05, 0.1, 0.15), strict: bool = False) -> None:
        super().__init__()
        self.alphas = list(alphas)
        self.strict = strict
        k = len(self.alphas)
        self.add_state("pck_image_sum", torch.zeros(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_images", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("correct_keypoints", torch.zeros(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_keypoints", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, distances: Tensor, threshold_base: float) -> None:
        """Add one image pair: transfer errors (N,) in pixels and its L."""
        if distances.numel() == 0:
            return
        correct = self.correct(
            distances.to(self.pck_image_sum.device), threshold_base, self.alphas, self.strict
        ).double()
        self.pck_image_sum += correct.mean(0)
        self.num_images += 1
        self.correct_keypoints += correct.sum(0)
        self.num_keypoints += distances.numel()

    @staticmethod
    def correct(distances: Tensor, threshold_base: float, alphas: Sequence[float], strict: bool = False) -> Tensor:
        """Bool (N, len(alphas)): which keypoints are within alpha * L."""
        dist = distances.double()
        thr = torch.as_tensor(list(alphas), dtype=torch.float64, device=dist.device) * float(threshold_base)
        return dist[:, None] < thr[None] if strict else dist[:, None] <= thr[None]

    def compute(self) -> dict[str, float]:
        images = self.num_images.clamp(min=1)
        keypoints = self.num_keypoints.clamp(min=1)
        out = {}
        for i, a in enumerate(self.alphas):
            out[f"pck@{a:g}"] = float(self.pck_image_sum[i] / images)
            out[f"pck_kpt@{a:g}"] = float(self.correct_keypoints[i] / keypoints)
        return out
