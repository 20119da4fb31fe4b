"""Accuracy and area under the cumulative error curve of one error per pair (homography, pose)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from kornia.metrics import auc_from_errors
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class ErrorAUC(Metric):
    """AUC@t (SuperGlue / glue-factory trapezoid definition, as a fraction in [0, 1]) and accuracy@t.

    A failed pair has error inf: it lowers every AUC and accuracy.  Keys: f"{auc_name}@{t}" and,
    when `accuracy_name` is set, f"{accuracy_name}@{t}".
    """

    full_state_update = False

    def __init__(self, thresholds: Sequence[float], auc_name: str, accuracy_name: str | None = None) -> None:
        super().__init__()
        self.thresholds = list(thresholds)
        self.auc_name = auc_name
        self.accuracy_name = accuracy_name
        self.add_state("errors", default=[], dist_reduce_fx="cat")

    def update(self, errors: Tensor) -> None:
        """Add per-pair errors (B,) or a single error."""
        self.errors.append(torch.as_tensor(errors, dtype=torch.float64, device=self.device).reshape(-1))

    def compute(self) -> dict[str, float]:
        errors = dim_zero_cat(self.errors) if len(self.errors) else torch.zeros(0, dtype=torch.float64)
        if errors.numel() == 0:
            out = {f"{self.auc_name}@{t:g}": 0.0 for t in self.thresholds}
        else:
            aucs = auc_from_errors(errors.cpu(), self.thresholds)
            out = {f"{self.auc_name}@{t:g}": aucs[float(t)] / 100.0 for t in self.thresholds}
        if self.accuracy_name is not None:
            for t in self.thresholds:
                accuracy = float((errors <= t).double().mean()) if errors.numel() else 0.0
                out[f"{self.accuracy_name}@{t:g}"] = accuracy
        return out
