"""Descriptors + DeepMatching pyramid for one image pair: PUMP's single-scale matcher."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from corrlab.models.convmixer import ConvMixer
from corrlab.models.pump.single_scale import CELL, PyramidMatcher, RawCorrespondences


def apply_affine(matrix: Tensor, points: Tensor) -> Tensor:
    """(N, 2) points through the affine part of a 3x3 matrix."""
    m = matrix.to(points)
    return points @ m[:2, :2].T + m[:2, 2]


def map_raw(raw: RawCorrespondences, back1: Tensor, back2: Tensor) -> tuple[Tensor, Tensor]:
    """pos1, pos2 of `raw` with image-1 columns mapped by back1 and image-2 columns by back2."""
    out = []
    for pos in (raw.pos1, raw.pos2):
        pos = pos.clone()
        pos[:, 0:2] = apply_affine(back1, pos[:, 0:2])
        pos[:, 2:4] = apply_affine(back2, pos[:, 2:4])
        out.append(pos)
    return out[0], out[1]


class PumpMatcher(nn.Module):
    """Images (3, H, W) in [0, 1] -> raw best correspondences (cells of image 1, 4x4 blocks of
    image 2) in these images' pixels.  The descriptor network sees the image cropped to a multiple
    of 4 (what its stride-4 patches cover)."""

    def __init__(self, descriptor: ConvMixer, pyramid: PyramidMatcher) -> None:
        super().__init__()
        self.descriptor = descriptor
        self.pyramid = pyramid

    @torch.no_grad()
    def descriptors(self, image1: Tensor, image2: Tensor) -> tuple[Tensor, Tensor]:
        """Cell descriptors (C, H1 // 4, W1 // 4) of image 1 (at pixels 4i + 2) and dense (C, H2', W2') of image 2."""
        desc1 = self.descriptor(image1[None])[0]
        desc2 = self.descriptor(image2[None])[0]
        return desc1[:, CELL // 2 :: CELL, CELL // 2 :: CELL].contiguous(), desc2

    def raw(self, image1: Tensor, image2: Tensor) -> RawCorrespondences:
        cells, desc2 = self.descriptors(image1, image2)
        return self.pyramid(cells, desc2)

    def forward(self, image1: Tensor, image2: Tensor) -> Tensor:
        """Reciprocal correspondences (N, 6): [x1, y1, x2, y2, score, 0]."""
        return self.raw(image1, image2).reciprocal()
