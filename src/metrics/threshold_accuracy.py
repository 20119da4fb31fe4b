"""Per-pair fraction of matches under an error threshold, averaged over pairs (MMA, precision)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class ThresholdAccuracy(Metric):
    """Mean over pairs of the fraction of a pair's errors <= t, for each threshold t.

    MMA@t of the D2-Net protocol (one-directional errors) and glue-factory's prec@t (symmetric
    errors) are both this metric.  A pair without matches counts as accuracy 0.
    Keys: f"{name}@{t}" with t written as given (mma@1 ... mma@10).  `decimals` rounds each pair's fraction
    (half to even, as np.around) before averaging: IME's HPatches evaluation rounds to 3.
    """

    full_state_update = False

    def __init__(self, thresholds: Sequence[float], name: str, decimals: int | None = None) -> None:
        super().__init__()
        self.thresholds = list(thresholds)
        self.name = name
        self.decimals = decimals
        self.add_state("accuracy_sum", torch.zeros(len(self.thresholds), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_pairs", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    @staticmethod
    def pair_accuracy(errors: Tensor, thresholds: Sequence[float], decimals: int | None = None) -> Tensor:
        """Fraction of `errors` <= each threshold (rounded to `decimals`); zeros when there are no errors."""
        thr = torch.as_tensor(thresholds, dtype=torch.float64, device=errors.device)
        if errors.numel() == 0:
            return torch.zeros_like(thr)
        accuracy = (errors.double()[:, None] <= thr[None]).double().mean(0)
        return accuracy if decimals is None else torch.round(accuracy, decimals=decimals)

    def update(self, pair_errors: Tensor) -> None:
        """Add one pair's errors (N,)."""
        accuracy = self.pair_accuracy(pair_errors, self.thresholds, self.decimals)
        self.accuracy_sum += accuracy.to(self.accuracy_sum)
        self.num_pairs += 1

    def compute(self) -> dict[str, float]:
        mean = self.accuracy_sum / self.num_pairs.clamp(min=1)
        return {f"{self.name}@{t:g}": float(v) for t, v in zip(self.thresholds, mean)}
