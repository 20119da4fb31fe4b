"""PUMP's unsupervised DeepMatching loss: build the pyramid between two descriptor maps and reward
peaky top-level correlations (uniqueness), in both directions.  No ground truth is used."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from corrlab.ops.pyramid import pyramid_level


class DeepMatchingLoss(nn.Module):
    """-mean over cells of ||C_p / (|C_p|_1 + eps)||^2, C_p the rectified top-level map of cell p.

    The paper's defaults: descriptors cropped by `border` px and subsampled by `subsample`, image 1
    cells every 4 subsampled pixels (offset 2); each level max-pools, rectifies clamp(0)^power and
    aggregates children (border normalisation 0.9) until the maps are smaller than 2 * `atleast`;
    `eps` = 0.03 in the L1 normalisation absorbs unmatched cells.  Averaged over both directions.
    Perfectly peaked maps give -1, flat (random) ones ~0.
    """

    def __init__(
        self,
        eps: float = 0.03,
        atleast: int = 5,
        subsample: int = 2,
        border: int = 16,
        power: float = 1.5,
        border_norm: float = 0.9,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.atleast = atleast
        self.subsample = subsample
        self.border = border
        self.power = power
        self.border_norm = border_norm

    def forward(self, desc0: Tensor, desc1: Tensor) -> Tensor:
        """desc0, desc1: (B, C, H, W) L2-normalised descriptors of aligned pairs."""
        if desc0.shape != desc1.shape:
            raise ValueError(
                f"descriptor maps must have the same shape, got {tuple(desc0.shape)} and {tuple(desc1.shape)}"
            )
        if len(desc0) == 0:
            return desc0.sum() * 0
        return (self.one_way(desc0, desc1) + self.one_way(desc1, desc0)) / 2

    def rectify(self, x: Tensor) -> Tensor:
        return x.clamp(min=0) ** self.power

    def one_way(self, desc1: Tensor, desc2: Tensor) -> Tensor:
        crop = slice(self.border, -self.border or None, self.subsample)
        desc1, desc2 = desc1[..., crop, crop], desc2[..., crop, crop]
        cells = desc1[:, :, 2::4, 2::4]
        b, c, h1, w1 = cells.shape
        h2, w2 = desc2.shape[-2:]
        corr = torch.bmm(cells.reshape(b, c, -1).transpose(1, 2), desc2.reshape(b, c, -1)).view(b, h1, w1, h2, w2)
        weights = None
        level = 0
        eps = torch.finfo(corr.dtype).eps
        while True:
            level += 1
            corr, weights = pyramid_level(corr, level, weights, self.border_norm, eps, power=self.power)
            if weights.sum() == 0 or min(corr.shape[-2:]) < 2 * self.atleast:
                break
        top = self.rectify(corr)
        b, h1, w1 = top.shape[:3]
        top = top / (top.reshape(b, h1, w1, -1).sum(-1)[..., None, None] + self.eps)
        return -top.square().sum() / (b * h1 * w1)
