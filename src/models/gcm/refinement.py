"""DFM's hierarchical refinement step with GCM's "flexible" switch: every match at one level becomes at most two
matches among its 2x2 children at the next (twice finer) level.

For each parent, the 4 children in A and the 4 in C are compared (dot products of L2-normalised features); a child
i of A keeps its best child of C when the two are mutual nearest neighbours within the parent and both ratios of
squared distances are < `ratio`; `ratio == -1` ("flexible") keeps every child unconditionally.  The two children
with the largest distance are then dropped.  The reference (DFM and GCM) reads C's ratio at A's child index i
instead of at the matched child; `reference_compatible=True` keeps that, the default reads it at the match.
Features are gathered at the children before normalising them, so the full normalised maps the reference builds
are never materialised (same values: per-pixel normalisation and dot products are unchanged).
"""

from __future__ import annotations

import torch
from torch import Tensor

from corrlab.models.r2d2.folded_trunk import RawAtPixels

# child offsets (dx, dy) in the reference's order
CHILDREN = ((0, 0), (0, 1), (1, 0), (1, 1))


def normalised_children(feature_map: Tensor | RawAtPixels, points: Tensor) -> list[Tensor]:
    """For each child offset, the (C, N) L2-normalised features of `feature_map` (1 x C x H x W, or a RawAtPixels
    computed at those pixels only) at points + offset.  A channels-last map is read by rows (the folded trunk's)."""
    if isinstance(feature_map, RawAtPixels):
        columns = feature_map.columns([(points[0] + dx, points[1] + dy) for dx, dy in CHILDREN])
    elif not feature_map.is_contiguous() and feature_map.is_contiguous(memory_format=torch.channels_last):
        pixels = feature_map[0].permute(1, 2, 0)
        columns = [pixels[points[1] + dy, points[0] + dx].t() for dx, dy in CHILDREN]
    else:
        fmap = feature_map.squeeze(0)
        columns = [fmap[:, points[1] + dy, points[0] + dx] for dx, dy in CHILDREN]
    return [column / column.square().sum(0).sqrt().unsqueeze(0) for column in columns]


def refine_points(
    points_a: Tensor,
    points_b: Tensor,
    map_a: Tensor | RawAtPixels,
    map_b: Tensor | RawAtPixels,
    ratio: float,
    bidirectional: bool = True,
    reference_compatible: bool = False,
) -> tuple[Tensor, Tensor]:
    """Matches (2, N) integer (x, y) at one level -> (2, M) at the twice finer level of `map_a` / `map_b`.

    If fewer than 4 children survive out of more parents, the doubled parents are returned unrefined."""
    count = points_a.shape[1]
    if count == 0:
        return points_a, points_b
    points_a, points_b = points_a * 2, points_b * 2
    children_a = normalised_children(map_a, points_a)
    children_b = normalised_children(map_b, points_b)
    device = points_a.device
    scores = children_a[0].new_zeros(count, 4, 4)
    for i, column_a in enumerate(children_a):
        for j, column_b in enumerate(children_b):
            scores[:, i, j] = torch.sum(column_a * column_b, 0)

    score_ab, match_ab = torch.topk(scores, 2, dim=2)
    score_ab = 2 - 2 * score_ab
    ratio_ab = score_ab[:, :, 0] / (score_ab[:, :, 1] + 1e-8)
    best_ab, distance_ab = match_ab[:, :, 0], score_ab[:, :, 0]

    score_ba, match_ba = torch.topk(scores.transpose(2, 1), 2, dim=2)
    score_ba = 2 - 2 * score_ba
    ratio_ba = score_ba[:, :, 0] / (score_ba[:, :, 1] + 1e-8)
    best_ba = match_ba[:, :, 0]
    if not bidirectional:
        ratio_ba = torch.zeros_like(ratio_ba)
    if not reference_compatible:
        ratio_ba = ratio_ba.gather(1, best_ab)  # C's ratio at the child A's child i matched

    mutual = best_ba.gather(1, best_ab) == torch.arange(4, device=device).unsqueeze(0)
    keep = (torch.max(ratio_ab, ratio_ba) < ratio) & mutual
    if ratio == -1.0:
        keep = torch.ones_like(keep)
    distance_ab = distance_ab.clone()
    distance_ab[~keep] = 5  # squared distances are <= 4
    _, worst = torch.topk(distance_ab, 2, dim=1)
    rows = torch.arange(count, device=device)
    keep[rows, worst[:, 0]] = False
    keep[rows, worst[:, 1]] = False

    offsets = torch.tensor(CHILDREN, device=device)
    refined_a = torch.stack(
        (
            (points_a[0].unsqueeze(1) + offsets[:, 0].unsqueeze(0))[keep],
            (points_a[1].unsqueeze(1) + offsets[:, 1].unsqueeze(0))[keep],
        )
    )
    refined_b = torch.stack(
        (
            (points_b[0].unsqueeze(1) + offsets[:, 0][best_ab])[keep],
            (points_b[1].unsqueeze(1) + offsets[:, 1][best_ab])[keep],
        )
    )
    if refined_a.shape[1] < 4 and count > refined_a.shape[1]:
        return points_a, points_b
    return refined_a, refined_b
