"""Test-only module whose transfer() returns the annotated keypoints, optionally moved by known offsets."""

from __future__ import annotations

import torch

from corrlab.modules.base import MatchingModule


class OracleTransfer(MatchingModule):
    """transfer() = the annotated keypoints of image 1, moved by `shift_px` (original pixels, per slot along x)."""

    requires_weights = False

    def __init__(self, shift_px: dict[str, list[float]] | None = None) -> None:
        super().__init__()
        self.shift_px = shift_px or {}

    def transfer(self, batch: dict, query_kpts0: torch.Tensor) -> torch.Tensor:
        out = batch["kpts1"].clone()
        for b, category in enumerate(batch["category"]):
            ids = batch["kpts_valid"][b].nonzero()[:, 0]
            shift = torch.tensor(self.shift_px.get(category, [0.0] * len(ids)), dtype=out.dtype)
            out[b, ids, 0] += shift * batch["scale1"][b, 0]
        return out
