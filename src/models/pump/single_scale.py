"""Single-scale PUMP: DeepMatching pyramid over the cells of image 1 against dense image 2.

Image 1 is described by one descriptor per 4x4 cell (taken at the cell centre 4i + 2), image 2
densely.  Level 0 holds the cosine similarity of every cell with every pixel of image 2; levels
above aggregate children (src/ops/pyramid.py) until the maps are small; a top-down pass adds the
best parents' scores back down to level 0, where every cell and every 4x4 block of image 2 keeps its
best correspondence.

Level 0 is never materialised whole: it is computed in chunks of cell rows once to build level 1 and
once more in the top-down pass, which is what makes memory ~1/4 of the full pyramid for the same
result.  `level0="mm"` computes it as a matrix product (BLAS; the default, faster); `"conv"` as the
reference does, a 1x1 convolution (oneDNN's reduction order, bit-identical to the reference's
whole-volume convolution).  The two differ by float32 rounding (a few 1e-7), which can flip near-ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from corrlab.ops import pyramid
from corrlab.ops.pyramid_reference import border_norms, normalise_borders, parent_grid

CELL = 4  # image 1 is matched by 4x4 cells, image 2 densely
MIN_CHUNK_CELLS = 64  # level-0 slices are computed for at least this many cells at once (see row_chunks)
LEVEL0 = ("conv", "mm")  # how level 0 is computed: the reference's 1x1 convolution, or a matrix product


def cell_centres(height: int, width: int, device=None) -> Tensor:
    """(x, y) pixel centres of the (height, width) cells, row-major: (4 j + 2, 4 i + 2)."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack([xs, ys], -1).reshape(-1, 2).float() * CELL + CELL // 2


@dataclass
class RawCorrespondences:
    """Best correspondences in both directions, before the reciprocity check.

    pos1 (H1c * W1c, 4): for every cell of image 1, [x1, y1, x2, y2] of its best pixel in image 2;
    score1 (H1c, W1c).  pos2 (H2b * W2b, 4): for every 4x4 block of image 2, the best (cell of
    image 1, pixel of the block) as [x1, y1, x2, y2]; score2 (H2b, W2b).  best1 / best2 are the
    same choices as flat indices (pixel of image 2; cell * map_size + pixel), map_size = H2 * W2.
    """

    pos1: Tensor
    score1: Tensor
    pos2: Tensor
    score2: Tensor
    best1: Tensor
    best2: Tensor
    map_size: int

    def reciprocal(self) -> Tensor:
        """Rows [x1, y1, x2, y2, score, 0] of the cells whose best pixel is also, among all cells and
        the pixels of its 4x4 block, the best of that block (an exact test on indices)."""
        h2b, w2b = self.score2.shape
        bx, by = self.pos1[:, 2].long() // CELL, self.pos1[:, 3].long() // CELL
        inside = (bx < w2b) & (by < h2b)
        block = by.clamp(max=h2b - 1) * w2b + bx.clamp(max=w2b - 1)
        cells = torch.arange(len(self.pos1), device=self.pos1.device)
        keep = inside & (self.best2[block] == cells * self.map_size + self.best1)
        score = self.score1.reshape(-1, 1)[keep]
        return torch.cat([self.pos1[keep], score, torch.zeros_like(score)], 1)


class PyramidMatcher:
    """DeepMatching pyramid on descriptors: `levels` max levels (0 = only level 0), stop once a map
    side is <= `min_shape`, activation clamp(0)^power at every level, border normalisation
    `border_norm` in [0, 1].  `chunk_bytes` bounds the level-0 slice held at once (results do not
    depend on it); `level0` is one of LEVEL0 (see the module docstring).  Defaults are the
    reference's (test_singlescale.py)."""

    def __init__(
        self,
        levels: int = 99,
        min_shape: int = 5,
        power: float = 1.5,
        border_norm: float = 0.9,
        chunk_bytes: int = 64 * 2**20,
        level0: str = "mm",
    ) -> None:
        if not 1 <= power <= 3:
            raise ValueError(f"power must be in [1, 3], got {power}")
        if level0 not in LEVEL0:
            raise ValueError(f"level0 must be one of {LEVEL0}, got '{level0}'")
        self.level0_op = level0
        self.levels = levels
        self.min_shape = min_shape
        self.power = power
        self.border_norm = border_norm
        self.chunk_bytes = chunk_bytes
        self.eps = 1e-8

    def activate_(self, volume: Tensor) -> Tensor:
        return volume.clamp_(min=0).pow_(self.power)

    def level0(self, cells: Tensor, desc2: Tensor, rows: slice, buffer: Tensor) -> Tensor:
        """Level 0 (cosine similarities) for cell rows `rows`, (1, n, W1c, H2, W2), written into `buffer`."""
        c, h2, w2 = desc2.shape
        part = cells[:, rows]
        n = part.shape[1] * part.shape[2]
        if self.level0_op == "conv":
            filters = part.permute(1, 2, 0).reshape(n, c, 1, 1)
            return torch.conv2d(desc2[None], filters).view(1, part.shape[1], part.shape[2], h2, w2)
        corr = torch.mm(
            part.permute(1, 2, 0).reshape(n, c), desc2.reshape(c, -1), out=buffer[: n * h2 * w2].view(n, h2 * w2)
        )
        return corr.view(1, part.shape[1], part.shape[2], h2, w2)

    def row_chunks(self, cells: Tensor, desc2: Tensor) -> tuple[list[slice], Tensor]:
        """Cell-row slices of about `chunk_bytes` of level 0 and a buffer for the largest.

        Every slice holds at least MIN_CHUNK_CELLS cells (or all of them): BLAS computes products
        with few rows through other kernels, whose rounding differs from the whole product's."""
        h1c, w1c = cells.shape[1:]
        per_row = w1c * desc2.shape[1] * desc2.shape[2]
        min_rows = -(-MIN_CHUNK_CELLS // w1c)
        step = max(min_rows, self.chunk_bytes // max(per_row * desc2.element_size(), 1))
        starts = list(range(0, h1c, step))
        if len(starts) > 1 and h1c - starts[-1] < min_rows:
            starts.pop()
        ends = starts[1:] + [h1c]
        chunks = [slice(a, b) for a, b in zip(starts, ends)]
        size = max(c.stop - c.start for c in chunks) * per_row if self.level0_op == "mm" else 0  # conv allocates
        return chunks, desc2.new_empty(size)

    @torch.no_grad()
    def __call__(self, cells: Tensor, desc2: Tensor) -> RawCorrespondences:
        """cells (C, H1c, W1c): descriptors of image 1's cells; desc2 (C, H2, W2): dense image 2."""
        chunks, buffer = self.row_chunks(cells, desc2)
        pyramid_levels = self.forward_pass(cells, desc2, chunks, buffer)
        for level in range(len(pyramid_levels), 1, -1):
            pyramid.backtrack_(pyramid_levels[level - 1], pyramid_levels[level - 2], level)
            del pyramid_levels[level - 1]
        return self.best_correspondences(cells, desc2, chunks, buffer, pyramid_levels[0] if pyramid_levels else None)

    def forward_pass(self, cells: Tensor, desc2: Tensor, chunks: list[slice], buffer: Tensor) -> list[Tensor]:
        """Activated levels 1, 2, ... (level 0 is streamed into level 1)."""
        if self.levels < 1:
            return []
        h1c, w1c = cells.shape[1:]
        h2, w2 = desc2.shape[1:]
        level1 = desc2.new_zeros(1, *parent_grid(1, h1c, w1c), 1 + (h2 - 1) // 2, 1 + (w2 - 1) // 2)
        for rows in chunks:  # activating after the max-pool gives the same values (monotone) for 1/4 of the work
            pooled = pyramid.max_pool_activate(self.level0(cells, desc2, rows, buffer), self.power)
            pyramid.aggregate_(level1, pooled, level=1, first_row=rows.start)
        norms, weights = border_norms(1, h1c, w1c, None, self.border_norm, self.eps, level1.device)
        levels = [self.activate_(normalise_borders(level1, norms.to(level1)))]
        level = 1
        while min(levels[-1].shape[-2:]) > self.min_shape and level < self.levels:
            level += 1
            upper, weights = pyramid.pyramid_level(
                levels[-1], level, weights.to(levels[-1]), self.border_norm, self.eps
            )
            levels.append(self.activate_(upper))
        return levels

    def best_correspondences(
        self, cells: Tensor, desc2: Tensor, chunks: list[slice], buffer: Tensor, level1: Tensor | None
    ) -> RawCorrespondences:
        """Stream level 0 once more (top-down step from level 1 included) and keep, for every cell,
        its best pixel and, for every 4x4 block of image 2, its best (cell, pixel)."""
        h1c, w1c = cells.shape[1:]
        h2, w2 = desc2.shape[1:]
        scores1, pixels1 = [], []
        block_values = desc2.new_full((h2 // CELL, w2 // CELL), -float("inf"))
        block_indices = torch.zeros(block_values.shape, dtype=torch.long, device=desc2.device)
        for rows in chunks:
            score, pixel = pyramid.top_down_level0_(
                self.level0(cells, desc2, rows, buffer),
                level1,
                self.power,
                rows.start,
                block_values,
                block_indices,
                CELL,
                rows.start * w1c * h2 * w2,
            )
            scores1.append(score)
            pixels1.append(pixel)
        score1 = torch.cat(scores1).view(h1c, w1c)
        pixel1 = torch.cat(pixels1)
        pos1 = torch.cat([cell_centres(h1c, w1c, cells.device), torch.stack([pixel1 % w2, pixel1 // w2], 1).float()], 1)
        cell2, pixel2 = block_indices.reshape(-1) // (h2 * w2), block_indices.reshape(-1) % (h2 * w2)
        pos2 = torch.cat(
            [cell_centres(h1c, w1c, cells.device)[cell2], torch.stack([pixel2 % w2, pixel2 // w2], 1).float()], 1
        )
        return RawCorrespondences(pos1, score1, pos2, block_values, pixel1, block_indices.reshape(-1), h2 * w2)
