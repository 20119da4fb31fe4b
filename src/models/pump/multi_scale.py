"""Multi-scale / multi-rotation PUMP: run the single-scale matcher on every (scale, rotation) pair
and merge the results on a 2-px grid of each image, as the reference's test_multiscale.py does."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from corrlab.geometry.scale_rotation_code import encode_scale_rot
from corrlab.models.pump.images import downsample, rotate
from corrlab.models.pump.matcher import PumpMatcher, map_raw
from corrlab.ops.pyramid import merge_corres_

ACCU_STEP = 2  # half the 4-px cell of the single-scale matcher


def make_accumulator(height: int, width: int, device) -> Tensor:
    """(H // 2, W // 2, 6) zeros: one best correspondence per 2x2 bin (bin centres at 2i + 1)."""
    return torch.zeros(height // ACCU_STEP, width // ACCU_STEP, 6, device=device)


def accumulated_reciprocal(accu0: Tensor, accu1: Tensor) -> Tensor:
    """Rows kept by a bin of both accumulators (same correspondence, score > 0), each once."""
    rows0 = accu0.reshape(-1, 6)
    rows1 = accu1.reshape(-1, 6)
    rows0 = torch.unique(rows0[rows0[:, 4] > 0], dim=0)
    rows1 = torch.unique(rows1[rows1[:, 4] > 0], dim=0)
    both, counts = torch.unique(torch.cat([rows0, rows1]), dim=0, return_counts=True)
    return both[counts == 2]


def auto_levels(image1: Tensor, image2: Tensor, cell: int = 4) -> int:
    """The reference's pyramid depth for multi-scale matching: log2(smaller mean side / 4)."""
    mean_side = min(sum(image1.shape[-2:]) / 2, sum(image2.shape[-2:]) / 2)
    return int(math.log2(int(mean_side) / cell))


class MultiScalePump:
    """Scales 2^(i/2) in [min_scale, max_scale] (min_scale defaults to 1 / max_scale), rotations
    k * rot_step degrees in [min_rot, max_rot] (min_rot defaults to -max_rot).  For each scale the
    image to shrink is downsampled, the larger one goes first (it gets the 4x4 cells) and is rotated;
    every run's best correspondences are merged into per-image accumulators, and the final matches
    are the rows both accumulators kept.  Column 5 is the (scale, rotation) code.  `levels` = 0
    picks the pyramid depth from the image sizes, like the reference."""

    def __init__(
        self,
        matcher: PumpMatcher,
        max_scale: float = 4.0,
        min_scale: float | None = None,
        max_rot: float = 0.0,
        min_rot: float | None = None,
        rot_step: int = 45,
        levels: int = 0,
    ) -> None:
        self.matcher = matcher
        self.max_scale = max_scale
        self.min_scale = min_scale or 1 / max_scale
        self.max_rot = max_rot
        self.min_rot = -max_rot if min_rot is None else min_rot
        self.rot_step = rot_step
        self.levels = levels
        if not 0.1 <= self.min_scale <= self.max_scale <= 10 or not -180 <= self.min_rot <= self.max_rot <= 180:
            raise ValueError(
                f"bad scale range [{self.min_scale}, {self.max_scale}] or rotation range [{self.min_rot}, {self.max_rot}]"
            )

    def scales(self) -> list[float]:
        return [2 ** (i / 2) for i in range(-100, 101) if self.min_scale <= 2 ** (i / 2) <= self.max_scale]

    def rotations(self) -> list[float]:
        """Rotation angles applied to the first image (the reference enumerates -rot)."""
        steps = range(-180 // self.rot_step, 180 // self.rot_step)
        return [-i * self.rot_step for i in steps if self.min_rot <= i * self.rot_step <= self.max_rot]

    @torch.no_grad()
    def __call__(self, image1: Tensor, image2: Tensor) -> Tensor:
        """(N, 6) reciprocal correspondences [x1, y1, x2, y2, score, code] in input pixels."""
        saved_levels = self.matcher.pyramid.levels
        self.matcher.pyramid.levels = self.levels or auto_levels(image1, image2)
        try:
            accus = (
                make_accumulator(*image1.shape[-2:], image1.device),
                make_accumulator(*image2.shape[-2:], image2.device),
            )
            whole: dict[int, Tensor] = {}  # dense descriptors of the unshrunk, unrotated images
            for scale in self.scales():
                self.merge_scale(scale, image1, image2, accus, whole)
            return accumulated_reciprocal(*accus)
        finally:
            self.matcher.pyramid.levels = saved_levels

    def unrotated_dense(self, whole: dict[int, Tensor], side: int, factor: float, image: Tensor) -> Tensor:
        """Dense descriptors of input image `side` shrunk by `factor`, unrotated.  The whole image (factor 1)
        serves every scale of its side, so its descriptors are computed once and kept in `whole` (the same input
        gives the same descriptors: the matches are those of describing it at every scale, as the reference does)."""
        if factor != 1:
            return self.matcher.dense(image)
        if side not in whole:
            whole[side] = self.matcher.dense(image)
        return whole[side]

    def merge_scale(
        self,
        scale: float,
        image1: Tensor,
        image2: Tensor,
        accus: tuple[Tensor, Tensor],
        whole: dict[int, Tensor],
    ) -> None:
        factors = (min(scale, 1), min(1 / scale, 1))
        first, second = downsample(image1, factors[0]), downsample(image2, factors[1])
        sides = (0, 1)
        swapped = min(first[0].shape[-2:]) < min(second[0].shape[-2:])
        if swapped:
            first, second, sides = second, first, (1, 0)
        sign = -1 if swapped else 1
        dense2 = self.unrotated_dense(whole, sides[1], factors[sides[1]], second[0])
        for angle in self.rotations():
            code = float(encode_scale_rot(scale, angle))
            rotated, turn = rotate(first[0], sign * angle)
            back1, back2 = first[1] @ turn, second[1]
            dense1 = (
                self.unrotated_dense(whole, sides[0], factors[sides[0]], first[0])
                if angle == 0
                else self.matcher.dense(rotated)
            )
            raw = self.matcher.raw_from_dense(dense1, dense2)
            pos1, pos2 = map_raw(raw, back1, back2)
            grids = [
                torch.cat([pos.view(*score.shape, 4), score[..., None], torch.full_like(score[..., None], code)], -1)
                for pos, score in ((pos1, raw.score1), (pos2, raw.score2))
            ]
            backs = [back1, back2]
            if swapped:
                grids = [g[..., [2, 3, 0, 1, 4, 5]] for g in grids[::-1]]
                backs = backs[::-1]
            for side, (grid, back) in enumerate(zip(grids, backs)):
                max_dist = 8 * math.sqrt(abs(float(torch.linalg.det(back[:2, :2]))))
                merge_corres_(
                    accus[side], grid.float().contiguous(), 2 * side, torch.linalg.inv(back), max_dist, ACCU_STEP
                )
