"""Average end-point error and PCK at pixel thresholds, per image and pooled over all points."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class EndpointError(Metric):
    """`aepe` (mean over images of the per-image mean EPE), `pck@k` (mean over images of the fraction
    of points with EPE <= k) and `pck_pooled@k` (all points of all images pooled), as in DenseMatching.
    Images without valid points are skipped.
    """

    full_state_update = False

    def __init__(self, thresholds: Sequence[float] = (1, 3, 5)) -> None:
        super().__init__()
        self.thresholds = list(thresholds)
        k = len(self.thresholds)
        self.add_state("epe_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("pck_image_sum", torch.zeros(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_images", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("correct_points", torch.zeros(k, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_points", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, image_epe: Tensor) -> None:
        """Add one image's end-point errors (N,) at its valid GT points."""
        if image_epe.numel() == 0:
            return
        epe = image_epe.double().to(self.epe_sum.device)
        thr = torch.as_tensor(self.thresholds, dtype=torch.float64, device=epe.device)
        correct = (epe[:, None] <= thr[None]).double()
        self.epe_sum += epe.mean()
        self.pck_image_sum += correct.mean(0)
        self.num_images += 1
        self.correct_points += correct.sum(0)
        self.num_points += epe.numel()

    def compute(self) -> dict[str, float]:
        images = self.num_images.clamp(min=1)
        points = self.num_points.clamp(min=1)
        out = {"aepe": float(self.epe_sum / images)}
        for i, t in enumerate(self.thresholds):
            out[f"pck@{t:g}"] = float(self.pck_image_sum[i] / images)
            out[f"pck_pooled@{t:g}"] = float(self.correct_points[i] / points)
        return out
