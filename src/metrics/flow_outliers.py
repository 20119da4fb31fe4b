"""KITTI's flow outlier rate Fl: the percentage of ground-truth pixels whose end-point error exceeds both 3 px and
5 % of the ground-truth flow's magnitude (the devkit's flowErrorsOutlier), pooled over every pixel of the split."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

ABSOLUTE_PX, RELATIVE = 3.0, 0.05  # KITTI devkit's tau


def flow_outliers(epe: Tensor, gt_magnitude: Tensor) -> Tensor:
    """(N,) bool: epe > 3 px and epe / |gt| > 5 % (the devkit's and DenseMatching's expression; |gt| = 0 gives
    epe / |gt| = inf, an outlier whenever epe > 3 px)."""
    return (epe > ABSOLUTE_PX) & (epe / gt_magnitude > RELATIVE)


class FlowOutlierRate(Metric):
    """`fl`: 100 x outliers / valid pixels over all images pooled (DenseMatching's run_evaluation_kitti: the
    outlier flags of every image concatenated, then averaged)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("outliers", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("pixels", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, epe: Tensor, gt_magnitude: Tensor) -> None:
        """One image's end-point errors and GT magnitudes (N,) at its valid pixels."""
        self.outliers += flow_outliers(epe, gt_magnitude).sum().to(self.outliers)
        self.pixels += epe.numel()

    def compute(self) -> Tensor:
        return 100.0 * self.outliers / self.pixels.clamp(min=1)
