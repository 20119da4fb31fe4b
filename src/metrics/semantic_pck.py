"""Semantic PCK@alpha: a keypoint is correct when its transfer error <= alpha * L (bbox or image size)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class SemanticPCK(Metric):
    """`pck@a`: mean over images of the fraction of correct keypoints; `pck_kpt@a`: pooled over all
    keypoints.  L (the threshold base) is given per image: max(bbox h, w) for SPair / AP-10k,
    max(image h, w) for PF-Pascal.  Images without keypoints are skipped.
    """

    full_state_update = False

    def __init__(self, alphas: Sequence[float] = (0.01, 0.05, 0.1, 0.15)) -> None:
        super().__init__()
        self.alphas = list(alphas)
        k = len(self.alphas)
        self.add_state("pck_image_sum", torch.zeros(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_images", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("correct_keypoints", torch.zeros(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_keypoints", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, distances: Tensor, threshold_base: float) -> None:
        """Add one image pair: transfer errors (N,) in pixels and its L."""
        if distances.numel() == 0:
            return
        dist = distances.double().to(self.pck_image_sum.device)
        thr = torch.as_tensor(self.alphas, dtype=torch.float64, device=dist.device) * float(threshold_base)
        correct = (dist[:, None] <= thr[None]).double()
        self.pck_image_sum += correct.mean(0)
        self.num_images += 1
        self.correct_keypoints += correct.sum(0)
        self.num_keypoints += dist.numel()

    def compute(self) -> dict[str, float]:
        images = self.num_images.clamp(min=1)
        keypoints = self.num_keypoints.clamp(min=1)
        out = {}
        for i, a in enumerate(self.alphas):
            out[f"pck@{a:g}"] = float(self.pck_image_sum[i] / images)
            out[f"pck_kpt@{a:g}"] = float(self.correct_keypoints[i] / keypoints)
        return out
