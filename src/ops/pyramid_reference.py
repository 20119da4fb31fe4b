"""Readable PyTorch reference of the DeepMatching pyramid ops (the compiled kernels must equal it).

Volumes are (B, H1, W1, H2, W2): one correlation map (H2, W2) of image 2 per cell (h1, w1) of
image 1.  A pyramid level aggregates, for every parent cell, the max-pooled (3x3, stride 2) maps of
its 4 children (top-left, top-right, bottom-left, bottom-right), each shifted by one pooled pixel
towards its quadrant: upper[P][p] += w_c * pooled[c][p - 1] for a top/left child, [p + 1] for a
bottom/right one.  Level 1 children are the 2x2 cells around a parent on a grid one cell larger
(H1 + 1, W1 + 1); at level l >= 2 they sit at +-2^(l-2) cells on the same grid.  Children are
always added in the order TL, TR, BL, BR, so every backend rounds identically.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ROLES = ((0, 0), (0, 1), (1, 0), (1, 1))  # (dy, dx): 0 = top / left child, 1 = bottom / right child


def parent_grid(level: int, h1: int, w1: int) -> tuple[int, int]:
    """Size of the parent cell grid of a level built from an (h1, w1) child grid."""
    return (h1 + 1, w1 + 1) if level == 1 else (h1, w1)


def child_grid(level: int, uh1: int, uw1: int) -> tuple[int, int]:
    """Size of the child cell grid of a level whose parent grid is (uh1, uw1)."""
    return (uh1 - 1, uw1 - 1) if level == 1 else (uh1, uw1)


def role_offset(level: int, d: int) -> int:
    """child index - parent index along one axis, for the top/left (d=0) or bottom/right (d=1) child."""
    if level == 1:
        return d - 1
    gap = 2 ** (level - 2)
    return gap if d else -gap


def cell_ranges(
    level: int, d: int, n_parent: int, n_child: int, first: int = 0, count: int | None = None
) -> tuple[slice, slice]:
    """(parent slice, child slice) along one cell axis pairing every parent with its child of role d,
    restricted to children [first, first + count) and expressed in chunk-local child indices."""
    count = n_child - first if count is None else count
    offset = role_offset(level, d)
    lo = max(0, first - offset)
    hi = min(n_parent, n_child - offset, first + count - offset)
    if hi <= lo:
        return slice(0, 0), slice(0, 0)
    return slice(lo, hi), slice(lo + offset - first, hi + offset - first)


def map_ranges(d: int, n: int) -> tuple[slice, slice]:
    """(upper slice, child slice) of pooled map pixels along one axis for a child of role d."""
    return (slice(1, n), slice(0, n - 1)) if d == 0 else (slice(0, n - 1), slice(1, n))


def role_indices(
    level: int,
    dy: int,
    dx: int,
    parents: tuple[int, int],
    children: tuple[int, int],
    maps: tuple[int, int],
    first_row: int = 0,
    rows: int | None = None,
) -> tuple[tuple, tuple]:
    """(upper index, child index) into (B, cells, cells, PH, PW) volumes pairing every parent with its
    child of role (dy, dx), pooled map pixels shifted towards the child's quadrant; child rows are
    [first_row, first_row + rows) of the full grid, in chunk-local indices."""
    parent_rows, child_rows = cell_ranges(level, dy, parents[0], children[0], first_row, rows)
    parent_cols, child_cols = cell_ranges(level, dx, parents[1], children[1])
    upper_y, child_y = map_ranges(dy, maps[0])
    upper_x, child_x = map_ranges(dx, maps[1])
    return (slice(None), parent_rows, parent_cols, upper_y, upper_x), (
        slice(None),
        child_rows,
        child_cols,
        child_y,
        child_x,
    )


def max_pool(volume: Tensor) -> Tensor:
    """3x3 stride-2 max-pool (padding 1) of every correlation map of a (..., H2, W2) volume."""
    h2, w2 = volume.shape[-2:]
    pooled = F.max_pool2d(volume.reshape(-1, 1, h2, w2), 3, stride=2, padding=1)
    return pooled.view(*volume.shape[:-2], *pooled.shape[-2:])


def aggregate_reference(
    upper: Tensor, pooled: Tensor, level: int, weights: Tensor | None = None, first_row: int = 0
) -> Tensor:
    """Add into `upper` (B, UH1, UW1, PH, PW) the weighted, shifted children taken from `pooled`,
    which holds child rows [first_row, first_row + pooled.shape[1]) of the full child grid.
    `weights` (H1, W1) covers the full child grid (None = all ones).  Returns `upper`."""
    uh1, uw1, ph, pw = upper.shape[1:]
    h1, w1 = child_grid(level, uh1, uw1)
    rows = pooled.shape[1]
    for dy, dx in ROLES:
        upper_index, child_index = role_indices(level, dy, dx, (uh1, uw1), (h1, w1), (ph, pw), first_row, rows)
        child = pooled[child_index]
        if weights is not None:
            child_rows, child_cols = child_index[1:3]
            child = child * weights[child_rows.start + first_row : child_rows.stop + first_row, child_cols, None, None]
        upper[upper_index] += child
    return upper


def aggregate_transpose_reference(grad_upper: Tensor, level: int, weights: Tensor | None = None) -> Tensor:
    """Gradient of `aggregate_reference` (full child grid) w.r.t. `pooled`: (B, H1, W1, PH, PW)."""
    b, uh1, uw1, ph, pw = grad_upper.shape
    h1, w1 = child_grid(level, uh1, uw1)
    grad = grad_upper.new_zeros(b, h1, w1, ph, pw)
    for dy, dx in ROLES:
        upper_index, child_index = role_indices(level, dy, dx, (uh1, uw1), (h1, w1), (ph, pw))
        part = grad_upper[upper_index]
        if weights is not None:
            part = part * weights[child_index[1], child_index[2], None, None]
        grad[child_index] += part
    return grad


def border_norms(
    level: int,
    h1: int,
    w1: int,
    weights: Tensor | None,
    border_norm: float,
    eps: float,
    device: torch.device | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-parent normalisers (UH1, UW1, 3, 3) for the first / inner / last rows and columns of the
    maps, and the parents' new weights (UH1, UW1) = eps + sum of their children's weights.

    A child shifted towards the top is missing on the first row, etc.; a border pixel is divided by
    k^(1 - border_norm) * n^border_norm, n = weights present there, k = all children's weights."""
    uh1, uw1 = parent_grid(level, h1, w1)
    norms = torch.full((uh1, uw1, 3, 3), eps, device=device)
    child_weights = weights if weights is not None else torch.ones(h1, w1, device=device)
    for dy, dx in ROLES:
        parent_rows, child_rows = cell_ranges(level, dy, uh1, h1)
        parent_cols, child_cols = cell_ranges(level, dx, uw1, w1)
        region_y = slice(1, 3) if dy == 0 else slice(0, 2)
        region_x = slice(1, 3) if dx == 0 else slice(0, 2)
        norms[parent_rows, parent_cols, region_y, region_x] += child_weights[child_rows, child_cols, None, None]
    new_weights = norms[..., 1, 1].clone()
    norms = (norms[..., 1:2, 1:2] ** (1 - border_norm)) * (norms**border_norm)
    return norms, new_weights


def region_index(n: int, device=None) -> Tensor:
    """Which row of a 3x3 normaliser applies to each of n map rows: 0 first, 2 last, 1 inside."""
    index = torch.ones(n, dtype=torch.long, device=device)
    index[0] = 0
    index[-1] = 2 if n > 1 else 0
    return index


def normalise_borders(upper: Tensor, norms: Tensor) -> Tensor:
    """upper (B, UH1, UW1, PH, PW) divided by the normaliser of each pixel's region (in place
    when no gradient is needed, so inference does not double the memory of a level)."""
    ph, pw = upper.shape[-2:]
    if not upper.requires_grad:
        for y, ys in enumerate((slice(0, 1), slice(1, ph - 1), slice(ph - 1, ph) if ph > 1 else slice(0, 0))):
            for x, xs in enumerate((slice(0, 1), slice(1, pw - 1), slice(pw - 1, pw) if pw > 1 else slice(0, 0))):
                upper[..., ys, xs] /= norms[:, :, y, x, None, None]
        return upper
    divisor = norms[:, :, region_index(ph, norms.device)][:, :, :, region_index(pw, norms.device)]
    return upper / divisor


def backtrack_reference(upper: Tensor, lower: Tensor, level: int, first_row: int = 0) -> Tensor:
    """Top-down DeepMatching step, in place: every child map `lower` (rows [first_row, ...) of the
    full child grid) gains, at the argmax of each 3x3 stride-2 pooling window (windows exclude the
    last row and column), the best score of its parents at that window.  Returns `lower`."""
    b, rows, w1, h2, w2 = lower.shape
    uh1, uw1, ph, pw = upper.shape[1:]
    h1, _ = child_grid(level, uh1, uw1)
    back = lower.new_zeros(b, rows, w1, ph, pw)
    for dy, dx in ROLES:
        upper_index, child_index = role_indices(level, dy, dx, (uh1, uw1), (h1, w1), (ph, pw), first_row, rows)
        target = back[child_index]
        torch.maximum(target, upper[upper_index], out=target)
    inner = lower[..., : h2 - 1, : w2 - 1].reshape(-1, 1, h2 - 1, w2 - 1)
    _, argmax = F.max_pool2d(inner, 3, stride=2, padding=1, ceil_mode=True, return_indices=True)
    assert argmax.shape[-2:] == (ph, pw), "upper and lower maps do not match (upper = pooled lower)"
    argmax = (argmax // (w2 - 1)) * w2 + argmax % (w2 - 1)  # index in the full (h2, w2) map
    gain = lower.new_zeros(b * rows * w1, h2 * w2)
    gain.scatter_reduce_(1, argmax.view(len(gain), -1), back.view(len(gain), -1), reduce="amax")
    lower += gain.view_as(lower)
    return lower


def block_max_reference(volume: Tensor, block: int) -> tuple[Tensor, Tensor]:
    """Max over all maps and each block x block tile of a (N, H2, W2) stack: values and flat indices
    n * H2 * W2 + y * W2 + x of (H2 // block, W2 // block); ties go to the first in (n, y, x) order."""
    n, h2, w2 = volume.shape
    values, indices = F.max_pool3d(
        volume[None, None], kernel_size=(n, block, block), stride=(1, block, block), return_indices=True
    )
    return values[0, 0, 0], indices[0, 0, 0]


def merge_corres_reference(
    accu: Tensor, corres: Tensor, offset: int, inv_trf: Tensor, max_dist: float, step: int
) -> Tensor:
    """Multi-scale merge, in place on `accu` (OH, OW, 6): the bin centred at (step*i + step//2,
    step*j + step//2) of the reference image looks at the 3x3 cells of `corres` (IH, IW, 6, a grid of
    4-px cells of the scaled / rotated image) around its position mapped by `inv_trf` (2x3), and
    takes the best-scoring row among those within 2x the distance of the nearest one (and within
    `max_dist` unless none is) when it beats the bin's current score.  Returns `accu`."""
    oh, ow, _ = accu.shape
    ih, iw, _ = corres.shape
    for j in range(oh):
        for i in range(ow):
            x, y = float(i * step + step // 2), float(j * step + step // 2)
            xr = inv_trf[0, 0] * x + inv_trf[0, 1] * y + inv_trf[0, 2]
            yr = inv_trf[1, 0] * x + inv_trf[1, 1] * y + inv_trf[1, 2]
            xb, yb = int(0.5 + float(xr) / 4), int(0.5 + float(yr) / 4)
            cells = [
                (v, u) for v in range(yb - 1, yb + 2) for u in range(xb - 1, xb + 2) if 0 <= v < ih and 0 <= u < iw
            ]
            dists = [float((corres[v, u, offset] - x) ** 2 + (corres[v, u, offset + 1] - y) ** 2) for v, u in cells]
            best = min([float(np.float32(max_dist) * np.float32(max_dist))] + dists)
            for (v, u), d in zip(cells, dists):
                if d <= 4 * best and corres[v, u, 4] > accu[j, i, 4]:
                    accu[j, i] = corres[v, u]
    return accu
