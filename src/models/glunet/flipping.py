"""GLU-Net's flipping condition (GOCor / DenseMatching `estimate_flow_with_flipping_condition`): estimate the flow
against the target or its horizontal mirror, whichever the coarse 16 x 16 level finds easier, then mirror back.

The rule, per image (the reference decides on image 0 of the batch): score(source, target) from the 256 x 256
branch's level 4, GLU-Net-GOCor: the sum over source cells of the max over target cells of the global cost volume
("max_corr", larger is better); GLU-Net: minus the mean |x flow| of level 4 ("min_avg_flow", smaller flow is better).
Mirror if score(source, flip(target)) > score(source, target) and, as a confirmation, also
score(target, flip(source)) > score(target, source) (images swapped); ties keep the original."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from corrlab.models.dense_flow.warping import pixel_grid
from corrlab.models.glunet.glunet import GLUNet, preprocess_pair

Score = Callable[[Tensor, Tensor], Tensor]
FlowEstimator = Callable[[Tensor, Tensor], Tensor]


def max_corr_score(corr4: Tensor) -> Tensor:
    """(B,) sum over source cells (channels) of the max over target cells of a (B, Hs*Ws, Ht, Wt) cost volume."""
    return corr4.flatten(2).max(dim=2).values.sum(dim=1)


def min_avg_flow_score(flow4: Tensor) -> Tensor:
    """(B,) minus the mean |horizontal flow| of a (B, 2, H, W) level-4 flow (so that larger is better)."""
    return -flow4[:, 0].abs().mean(dim=(1, 2))


def coarse_score(net: GLUNet, source: Tensor, target: Tensor) -> Tensor:
    """(B,) the flipping condition's score of images in [0, 1] (only the 256 x 256 level-4 pass)."""
    _, _, source_256, target_256, _, _ = preprocess_pair(source, target)
    corr4, flow4 = net.coarse_flow(net.pyramid(target_256, levels=5)[4], net.pyramid(source_256, levels=5)[4])
    return max_corr_score(corr4) if net.cfg.gocor else min_avg_flow_score(flow4)


def mirror(image: Tensor) -> Tensor:
    return torch.flip(image, dims=[-1])


def flip_decision(score: Score, source: Tensor, target: Tensor) -> Tensor:
    """(B,) bool: estimate against the mirrored target (both tests prefer the mirror)."""
    first = score(source, mirror(target)) > score(source, target)
    if not first.any():
        return first
    return first & (score(target, mirror(source)) > score(target, source))


def estimate_flow_with_flipping(estimate: FlowEstimator, score: Score, source: Tensor, target: Tensor) -> Tensor:
    """(B, 2, H, W) flow on the target grid into the source; where the target is mirrored, the mirrored estimate's
    mapping (grid + flow) is mirrored back along x, as the reference does with np.fliplr."""
    flipped = flip_decision(score, source, target)
    if not flipped.any():
        return estimate(source, target)
    where = flipped.view(-1, 1, 1, 1)
    flow = estimate(source, torch.where(where, mirror(target), target))
    b, _, h, w = flow.shape
    grid = pixel_grid(b, h, w, flow.device, flow.dtype)
    mapping = grid + flow
    return torch.where(where, mirror(mapping), mapping) - grid
