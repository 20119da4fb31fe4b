"""Mean of one scalar per pair (e.g. the number of matches), reported under a given key."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class MeanValue(Metric):
    """Mean over pairs of a per-pair scalar; key `name`."""

    full_state_update = False

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, value: Tensor | float) -> None:
        self.total += torch.as_tensor(value, dtype=torch.float64, device=self.total.device)
        self.count += 1

    def compute(self) -> dict[str, float]:
        return {self.name: float(self.total / self.count.clamp(min=1))}
