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
    def dense(self, image: Tensor) -> Tensor:
        """Dense descriptors (C, H', W') of one image; NaN or infinite ones are an error (the pyramid's scans
        assume finite maps and would return arbitrary matches)."""
        dense = self.descriptor(image[None])[0]
        if not torch.isfinite(dense).all():
            source = "the image" if not torch.isfinite(image).all() else "the descriptor network's weights"
            raise ValueError(f"PUMP descriptors are not finite (NaN or inf): {source} hold non-finite values")
        return dense

    def raw(self, image1: Tensor, image2: Tensor) -> RawCorrespondences:
        return self.raw_from_dense(self.dense(image1), self.dense(image2))

    @staticmethod
    def cells(dense1: Tensor) -> Tensor:
        """Image 1's cell descriptors (C, H'/4, W'/4): its dense descriptors at pixels 4i + 2."""
        return dense1[:, CELL // 2 :: CELL, CELL // 2 :: CELL].contiguous()

    def raw_from_dense(self, dense1: Tensor, dense2: Tensor) -> RawCorrespondences:
        """Raw correspondences from the two images' dense descriptors."""
        return self.pyramid(self.cells(dense1), dense2)

    def forward(self, image1: Tensor, image2: Tensor) -> Tensor:
        """Reciprocal correspondences (N, 6): [x1, y1, x2, y2, score, 0]."""
        return self.raw(image1, image2).reciprocal()
