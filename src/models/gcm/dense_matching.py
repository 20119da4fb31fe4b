"""Dense mutual-nearest-neighbour matching of two coarse maps with a symmetric Lowe ratio test (DFM stage 0 and
the dense level).  The arithmetic follows the reference op for op, so its outputs are reproduced bit for bit."""

from __future__ import annotations

import torch
from torch import Tensor


def normalise_cells_(feature_map: Tensor) -> Tensor:
    """(HW, C) view of a 1 x C x H x W map, L2-normalised per cell IN PLACE (no eps), as the reference does.

    The caller's map is normalised too: where one tensor serves two levels (R2D2_STU's dw16, ResNet18's layer3),
    the second use sees it normalised again, and that is what the reference's numbers include."""
    channels = feature_map.shape[1]
    cells = feature_map.view(channels, -1).t()
    cells /= torch.sqrt(torch.sum(torch.square(cells), 1)).unsqueeze(1)
    return cells


def mutual_ratio_matches(desc_a: Tensor, desc_b: Tensor, ratio: float, bidirectional: bool = True) -> Tensor:
    """(M, 2) indices (i in A, j in B), ordered by i: mutual nearest neighbours whose ratio of squared distances
    d1 / (d2 + 1e-8) is <= `ratio` from A (at i) and from B (at j); `bidirectional=False` skips B's ratio."""
    similarity = desc_a @ desc_b.t()
    sim_ab, nn_ab = torch.topk(similarity, 2, dim=1)
    dist_ab = 2 - 2 * sim_ab
    ratio_ab = dist_ab[:, 0] / (dist_ab[:, 1] + 1e-8)
    sim_ba, nn_ba = torch.topk(similarity.t(), 2, dim=1)
    dist_ba = 2 - 2 * sim_ba
    ratio_ba = dist_ba[:, 0] / (dist_ba[:, 1] + 1e-8)
    if not bidirectional:
        ratio_ba = torch.zeros_like(ratio_ba)
    best_ab = nn_ab[:, 0]
    ids = torch.arange(similarity.shape[0], device=similarity.device)
    keep = (ids == nn_ba[best_ab, 0]) & (ratio_ab <= ratio) & (ratio_ba[best_ab] <= ratio)
    return torch.stack([ids[keep], best_ab[keep]], dim=-1)


def dense_feature_matching(
    map_a: Tensor, map_b: Tensor, ratio: float, bidirectional: bool = True
) -> tuple[Tensor, Tensor]:
    """Integer cell coordinates (2, M) as (x, y) in A and in B of the mutual ratio matches of two 1 x C x h x w
    maps, without those on the border of either map.  Both maps are normalised in place (see normalise_cells_)."""
    (h_a, w_a), (h_b, w_b) = map_a.shape[-2:], map_b.shape[-2:]
    if h_a * w_a < 2 or h_b * w_b < 2:
        raise ValueError(f"dense matching needs at least 2 cells per map, got {h_a}x{w_a} and {h_b}x{w_b}")
    pairs = mutual_ratio_matches(normalise_cells_(map_a), normalise_cells_(map_b), ratio, bidirectional)
    points_a = torch.stack((pairs[:, 0] % w_a, pairs[:, 0] // w_a))
    points_b = torch.stack((pairs[:, 1] % w_b, pairs[:, 1] // w_b))
    border = (
        (points_a[0] == 0)
        | (points_a[0] == w_a - 1)
        | (points_a[1] == 0)
        | (points_a[1] == h_a - 1)
        | (points_b[0] == 0)
        | (points_b[0] == w_b - 1)
        | (points_b[1] == 0)
        | (points_b[1] == h_b - 1)
    )
    return points_a[:, ~border], points_b[:, ~border]
