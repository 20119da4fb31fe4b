"""Recursive (coarse-to-fine) PUMP, the reference's test_singlescale_recursive.py: match jointly
downsized images, then re-match full-resolution tiles of image 1 against windows of image 2 centred
on the coarse matches, keeping the best score per 4-px cell of each image."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.models.pump.images import max_side_shape, scaling
from corrlab.models.pump.matcher import PumpMatcher, apply_affine
from corrlab.models.pump.single_scale import CELL


def tile_starts(size: int, tile: int, overlap: float) -> list[int]:
    """Starts (multiples of 4) of tiles of `tile` px covering `size` px with the given overlap."""
    if size <= tile:
        return [0]
    count = int(np.ceil(size / int(overlap * tile))) - 1
    return [int(v) for v in (np.linspace(0, size - tile, count) / CELL + 0.5).astype(int) * CELL]


def window_start(centre: float, size: int, window: int) -> int:
    """Start (multiple of 4) of a `window` px window of a `size` px axis centred near `centre`."""
    return int(max(0, min(size - window, centre - window // 2)) / CELL + 0.5) * CELL


def resize_float(image: Tensor, max_side: int) -> tuple[Tensor, Tensor]:
    """Area-resize a float image so that its longer side is `max_side`; image and new -> input pixel matrix."""
    height, width = image.shape[-2:]
    new = max_side_shape(height, width, max_side)
    if new == (height, width):
        return image, torch.eye(3, dtype=torch.float64)
    return F.interpolate(image[None], size=new, mode="area")[0], scaling(new[1] / width, new[0] / height)


class RecursivePump:
    """Coarse pass at `coarse_size` (both images shrunk by the same factor), correspondences with
    score > `score_thr` guide `fine_size` tiles of image 1 (overlap `overlap`) against windows of
    image 2 around the median of their coarse matches; a (tile, window) pair is matched when it holds
    at least `fast_thr` of the tile's coarse matches.  Defaults are the reference's."""

    def __init__(
        self,
        matcher: PumpMatcher,
        coarse_size: int = 512,
        fine_size: int = 512,
        overlap: float = 0.5,
        score_thr: float = 1.0,
        fast_thr: float = 0.1,
    ) -> None:
        if not (10 < coarse_size and 10 < fine_size and 0 <= overlap < 1 and 0 < fast_thr < 1):
            raise ValueError("need sizes > 10, 0 <= overlap < 1 and 0 < fast_thr < 1")
        self.matcher = matcher
        self.coarse_size = coarse_size
        self.fine_size = fine_size
        self.overlap = overlap
        self.score_thr = score_thr
        self.fast_thr = fast_thr

    def coarse(self, image1: Tensor, image2: Tensor) -> Tensor:
        """Confident reciprocal correspondences of the jointly downsized pair, in input pixels."""
        longest = max(*image1.shape[-2:], *image2.shape[-2:])
        factor = min(1.0, self.coarse_size / longest)
        small1, back1 = resize_float(image1, int(0.5 + factor * max(image1.shape[-2:])))
        small2, back2 = resize_float(image2, int(0.5 + factor * max(image2.shape[-2:])))
        corres = self.matcher(small1, small2)
        corres[:, 0:2] = apply_affine(back1, corres[:, 0:2])
        corres[:, 2:4] = apply_affine(back2, corres[:, 2:4])
        return corres[corres[:, 4] > self.score_thr]

    def blocks(self, image1: Tensor, image2: Tensor, coarse: Tensor):
        """(x1, y1, x2, y2) of the (tile of image 1, window of image 2) pairs to match."""
        size = self.fine_size
        (h1, w1), (h2, w2) = image1.shape[-2:], image2.shape[-2:]
        for y1 in tile_starts(h1, size, self.overlap):
            for x1 in tile_starts(w1, size, self.overlap):
                inside1 = (
                    (coarse[:, 0] >= x1)
                    & (coarse[:, 0] < x1 + size)
                    & (coarse[:, 1] >= y1)
                    & (coarse[:, 1] < y1 + size)
                )
                left = coarse[inside1, 2:4]
                total = len(left)
                while len(left):
                    x2 = window_start(float(left[:, 0].median()), w2, size)
                    y2 = window_start(float(left[:, 1].median()), h2, size)
                    inside = (
                        (left[:, 0] >= x2) & (left[:, 0] < x2 + size) & (left[:, 1] >= y2) & (left[:, 1] < y2 + size)
                    )
                    # the median fell between clusters: centre on the first left instead (the reference draws one
                    # from numpy's unseeded RNG, so its windows change from run to run; docs/pump.md "Recursive")
                    if not inside.any():
                        x2, y2 = window_start(float(left[0, 0]), w2, size), window_start(float(left[0, 1]), h2, size)
                        inside = (
                            (left[:, 0] >= x2)
                            & (left[:, 0] < x2 + size)
                            & (left[:, 1] >= y2)
                            & (left[:, 1] < y2 + size)
                        )
                    if inside.sum() / total >= self.fast_thr:
                        yield x1, y1, x2, y2
                    left = left[~inside]

    @torch.no_grad()
    def __call__(self, image1: Tensor, image2: Tensor) -> Tensor:
        """(N, 6) reciprocal correspondences [x1, y1, x2, y2, score, 0] in input pixels: the rows that are the
        best of their 4-px cell in both images."""
        accus = self.accumulate(image1, image2, self.coarse(image1, image2))
        rows = [a.reshape(-1, 5) for a in accus]
        rows = [torch.unique(r[r[:, 4] > 0], dim=0) for r in rows]
        both, counts = torch.unique(torch.cat(rows), dim=0, return_counts=True)
        matched = both[counts == 2]
        return torch.cat([matched, torch.zeros_like(matched[:, :1])], 1)

    @torch.no_grad()
    def accumulate(self, image1: Tensor, image2: Tensor, coarse: Tensor) -> list[Tensor]:
        """Per image, (cells high, cells wide, 5) best [x1, y1, x2, y2, score] of each 4-px cell over the tiles
        the coarse correspondences select (zeros where no tile reached)."""
        size = self.fine_size
        accus = [
            image1.new_zeros((h + CELL - 1) // CELL, (w + CELL - 1) // CELL, 5)
            for h, w in (image1.shape[-2:], image2.shape[-2:])
        ]
        for x1, y1, x2, y2 in self.blocks(image1, image2, coarse):
            raw = self.matcher.raw(image1[:, y1 : y1 + size, x1 : x1 + size], image2[:, y2 : y2 + size, x2 : x2 + size])
            shift = raw.pos1.new_tensor([x1, y1, x2, y2])
            for accu, pos, score, (ox, oy) in (
                (accus[0], raw.pos1, raw.score1, (x1, y1)),
                (accus[1], raw.pos2, raw.score2, (x2, y2)),
            ):
                h, w = score.shape
                region = accu[oy // CELL : oy // CELL + h, ox // CELL : ox // CELL + w]
                better = region[..., 4] < score
                region[..., 4][better] = score[better]
                region[..., :4][better] = (pos + shift).view(h, w, 4)[better]
        return accus
