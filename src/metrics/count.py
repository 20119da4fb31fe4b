"""Number of updates (e.g. of pairs scored), summed across ranks."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class Count(Metric):
    """Counts `update()` calls; key `name`."""

    full_state_update = False

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self) -> None:
        self.count += 1

    def compute(self) -> dict[str, float]:
        return {self.name: float(self.count)}
