"""Patch-level match proposals from a (pooled, consensus-filtered) 4-D correlation, following Patch2Pix's
`cal_coarse_matches` + `filter_coarse`: best cell both ways by softmax score, relocalised inside the pooling window,
mutual nearest neighbours, then training-time sampling and anchor expansion."""

from __future__ import annotations

import torch
from torch import Tensor

from corrlab.ops.maxpool4d import window_offsets


def matches_both_ways(corr: Tensor, window: Tensor | None, pool: int, stride: int) -> tuple[Tensor, Tensor]:
    """All (B, N0 + N1, 4) matches (x0, y0, x1, y1) in pixels and their (B, N0 + N1) softmax scores.

    Rows [0, K*L): for each image-1 cell its best image-0 cell (softmax over image-0 cells); rows after: for each
    image-0 cell its best image-1 cell.  Cells are relocalised by the max-pool window offsets (`window`, None when
    pool == 1) to the stride-`stride` grid, and placed at pixel stride * index + stride // 2.
    """
    b, _, i, j, k, l = corr.shape
    flat = corr.reshape(b, i * j, k * l)
    score_1to0, best0 = torch.softmax(flat, dim=1).max(dim=1)  # (B, K*L)
    score_0to1, best1 = torch.softmax(flat, dim=2).max(dim=2)  # (B, I*J)
    device = corr.device
    cells1 = torch.arange(k * l, device=device).expand(b, -1)
    cells0 = torch.arange(i * j, device=device).expand(b, -1)
    index0 = torch.cat([best0, cells0], dim=1)
    index1 = torch.cat([cells1, best1], dim=1)
    y0, x0, y1, x1 = index0 // j, index0 % j, index1 // l, index1 % l
    if window is not None:
        batch = torch.arange(b, device=device)[:, None]
        di, dj, dk, dl = window_offsets(window[batch, 0, y0, x0, y1, x1], pool)
        y0, x0, y1, x1 = y0 * pool + di, x0 * pool + dj, y1 * pool + dk, x1 * pool + dl
    matches = torch.stack([x0, y0, x1, y1], dim=-1) * stride + stride // 2
    return matches.float(), torch.cat([score_1to0, score_0to1], dim=1)


def mutual_matches(matches: Tensor, scores: Tensor, threshold: float = 0.0) -> tuple[Tensor, Tensor]:
    """Proposals of one pair from `matches_both_ways` rows (N, 4), scores (N,).

    Keeps the matches found in both directions (sorted by x0, then y0, scored by the image-1 -> image-0 pass), then
    those with score > threshold.  Like the reference, a step that would leave nothing is skipped: with no mutual
    match every row is kept, and when no score passes the threshold the matches of the previous step are kept.
    """
    unique, inverse, counts = torch.unique(matches, dim=0, return_inverse=True, return_counts=True)
    mutual = counts[inverse] > 1
    if mutual.any():
        first = torch.full((len(unique),), len(matches), dtype=torch.long, device=matches.device)
        first.scatter_reduce_(0, inverse, torch.arange(len(matches), device=matches.device), reduce="amin")
        keep = first[counts > 1]
        matches, scores = matches[keep], scores[keep]
    passing = scores > threshold
    if passing.any():
        matches, scores = matches[passing], scores[passing]
    return matches, scores


def sample_proposals(matches: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """Exactly `count` rows for training: a random permutation of the matches, repeated as needed (the reference's
    ptmax); the first match stands in when there is none."""
    if len(matches) == 0:
        raise ValueError("sample_proposals needs at least one match")
    order = torch.randperm(len(matches), generator=generator).to(matches.device)
    repeats = count // len(matches) + 1
    return matches[order.repeat(repeats)[:count]]


def expand_to_anchors(matches: Tensor, shift: int) -> Tensor:
    """(N, 4) -> (8N, 4): each proposal with its image-0 point moved to the 4 corners (+-shift, +-shift) while the
    image-1 point stays, then the same for the image-1 point (the reference's panc = 8 anchors)."""
    s = float(shift)
    offsets = matches.new_tensor(
        [
            [-s, -s, 0, 0],
            [s, -s, 0, 0],
            [-s, s, 0, 0],
            [s, s, 0, 0],
            [0, 0, -s, -s],
            [0, 0, s, -s],
            [0, 0, -s, s],
            [0, 0, s, s],
        ]
    )
    return (matches[:, None, :] + offsets).reshape(-1, 4)
