"""An independent, slow, fully materialised implementation of PUMP's single-scale matching (the
reference's algorithm: whole level 0, parent -> children index tables, 4-pass max-unpool,
max_pool3d), used to check the streamed implementation of src/models/pump/single_scale.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def children_table(level: int, h1: int, w1: int) -> list[list[int]]:
    """For every parent (row-major) the flat index of its TL, TR, BL, BR children, -1 if absent."""
    table = []
    if level == 1:
        for h in range(h1 + 1):
            for w in range(w1 + 1):
                kids = []
                for y, x in ((h - 1, w - 1), (h - 1, w), (h, w - 1), (h, w)):
                    kids.append(y * w1 + x if 0 <= y < h1 and 0 <= x < w1 else -1)
                table.append(kids)
        return table
    gap = 2 ** (level - 2)
    for h in range(h1):
        for w in range(w1):
            kids = []
            for y, x in ((h - gap, w - gap), (h - gap, w + gap), (h + gap, w - gap), (h + gap, w + gap)):
                kids.append(y * w1 + x if 0 <= y < h1 and 0 <= x < w1 else -1)
            table.append(kids)
    return table


def role_slices(role: int):
    """((parent map rows, child map rows), (parent cols, child cols), (norm rows, norm cols)) for a
    TL / TR / BL / BR child: a top child is read one row up (parent[p] += child[p - 1])."""
    dy, dx = divmod(role, 2)
    ys = (slice(1, None), slice(None, -1)) if dy == 0 else (slice(None, -1), slice(1, None))
    xs = (slice(1, None), slice(None, -1)) if dx == 0 else (slice(None, -1), slice(1, None))
    regions = (slice(1, 3) if dy == 0 else slice(0, 2), slice(1, 3) if dx == 0 else slice(0, 2))
    return ys, xs, regions


def forward_level(level: int, lower: torch.Tensor, weights: torch.Tensor, norm: float = 0.9, eps: float = 1e-8):
    """lower (H1, W1, H2, W2) activated -> (upper, new weights)."""
    h1, w1 = lower.shape[:2]
    pooled = F.max_pool2d(lower.reshape(h1 * w1, 1, *lower.shape[2:]), 3, 2, 1)[:, 0]
    table = children_table(level, h1, w1)
    n = len(table)
    res = torch.zeros(n, *pooled.shape[-2:])
    nrm = torch.full((n, 3, 3), eps)
    flat_w = weights.reshape(-1)
    for p, kids in enumerate(table):
        for role, c in enumerate(kids):
            if c < 0:
                continue
            (ydst, ysrc), (xdst, xsrc), (ry, rx) = role_slices(role)
            res[p, ydst, xdst] += pooled[c, ysrc, xsrc] * flat_w[c]
            nrm[p, ry, rx] += flat_w[c]
    new_weights = nrm[:, 1, 1].clone()
    nrm = (nrm[:, 1:2, 1:2] ** (1 - norm)) * (nrm**norm)
    ph, pw = res.shape[-2:]
    for y in range(ph):
        for x in range(pw):
            ry = 0 if y == 0 else (2 if y == ph - 1 else 1)
            rx = 0 if x == 0 else (2 if x == pw - 1 else 1)
            res[:, y, x] /= nrm[:, ry, rx]
    uh1, uw1 = (h1 + 1, w1 + 1) if level == 1 else (h1, w1)
    return res.view(uh1, uw1, ph, pw), new_weights.view(uh1, uw1)


def backward_level(level: int, upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """lower += unpooled best parents' scores (in place)."""
    h1, w1, h2, w2 = lower.shape
    table = children_table(level, h1, w1)
    flat_upper = upper.reshape(len(table), *upper.shape[-2:])
    back = torch.zeros(h1 * w1, *upper.shape[-2:])
    for p, kids in enumerate(table):
        for role, c in enumerate(kids):
            if c < 0:
                continue
            (ydst, ysrc), (xdst, xsrc), _ = role_slices(role)
            back[c, ysrc, xsrc] = torch.maximum(back[c, ysrc, xsrc], flat_upper[p, ydst, xdst])
    maps = lower.reshape(h1 * w1, h2, w2)
    for c in range(h1 * w1):
        gain = torch.zeros(h2, w2)
        for uy in range(back.shape[1]):
            for ux in range(back.shape[2]):
                ys = range(max(2 * uy - 1, 0), min(2 * uy + 2, h2 - 1))
                xs = range(max(2 * ux - 1, 0), min(2 * ux + 2, w2 - 1))
                window = [(maps[c, y, x].item(), y, x) for y in ys for x in xs]
                best = max(v for v, _, _ in window)
                _, y, x = next(t for t in window if t[0] == best)
                gain[y, x] = max(gain[y, x].item(), back[c, uy, ux].item())
        maps[c] += gain
    return lower


def naive_single_scale(
    cells: torch.Tensor, desc2: torch.Tensor, power: float = 1.5, min_shape: int = 5
) -> torch.Tensor:
    """Reciprocal correspondences (N, 6) sorted by (y1, x1)."""
    c, h1, w1 = cells.shape
    _, h2, w2 = desc2.shape
    level0 = F.conv2d(desc2[None], cells.permute(1, 2, 0).reshape(-1, c, 1, 1))[0].view(h1, w1, h2, w2)
    pyramid = [level0.clamp(min=0) ** power]
    weights = torch.ones(h1, w1)
    level = 0
    while min(pyramid[-1].shape[-2:]) > min_shape or level == 0:
        level += 1
        upper, weights = forward_level(level, pyramid[-1], weights)
        pyramid.append(upper.clamp(min=0) ** power)
    for level in range(len(pyramid) - 1, 0, -1):
        backward_level(level, pyramid[level], pyramid[level - 1])
    final = pyramid[0]
    score1, best1 = final.reshape(h1, w1, -1).max(-1)
    score2, best2 = F.max_pool3d(final.reshape(1, 1, h1 * w1, h2, w2), (h1 * w1, 4, 4), (1, 4, 4), return_indices=True)
    best2 = best2.reshape(h2 // 4, w2 // 4)
    rows = []
    for i in range(h1):
        for j in range(w1):
            q = int(best1[i, j])
            y2, x2 = divmod(q, w2)
            if y2 // 4 < h2 // 4 and x2 // 4 < w2 // 4 and int(best2[y2 // 4, x2 // 4]) == (i * w1 + j) * h2 * w2 + q:
                rows.append([4 * j + 2, 4 * i + 2, x2, y2, float(score1[i, j]), 0.0])
    return torch.tensor(rows).reshape(-1, 6)
