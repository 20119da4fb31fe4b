"""Dense nearest-neighbour matching of two descriptor maps: queries on a grid of image 0 against every pixel of
image 1, optionally kept only when mutual (the nearest pixel of image 0 to the match is the query itself).  It
measures a descriptor alone (distillation validation, bench/gcm_distill_accuracy.py), not GCM's matcher."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def nearest(queries: Tensor, candidates: Tensor, chunk: int = 256) -> Tensor:
    """Index of the most similar column of `candidates` (C x N) for each column of `queries` (C x Q)."""
    out = []
    for start in range(0, queries.shape[1], chunk):
        out.append((queries[:, start : start + chunk].T @ candidates).argmax(dim=1))
    return torch.cat(out) if out else queries.new_zeros(0, dtype=torch.long)


def grid_points(height: int, width: int, stride: int, device: torch.device) -> Tensor:
    """(Q, 2) integer x, y of the query grid: every `stride` pixels, starting at stride // 2."""
    ys = torch.arange(stride // 2, height, stride, device=device)
    xs = torch.arange(stride // 2, width, stride, device=device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)


@torch.no_grad()
def dense_nn_matches(desc0: Tensor, desc1: Tensor, stride: int = 8, mutual: bool = True) -> tuple[Tensor, Tensor]:
    """(kpts0, kpts1), each (N, 2) float pixel x, y (centres at integers), for C x H x W maps (L2-normalised here)."""
    desc0, desc1 = F.normalize(desc0, dim=0), F.normalize(desc1, dim=0)
    (_, h0, w0), w1 = desc0.shape, desc1.shape[-1]
    flat0, flat1 = desc0.reshape(desc0.shape[0], -1), desc1.reshape(desc1.shape[0], -1)
    points0 = grid_points(h0, w0, stride, desc0.device)
    index0 = points0[:, 1] * w0 + points0[:, 0]
    index1 = nearest(flat0[:, index0], flat1)
    if mutual:
        keep = nearest(flat1[:, index1], flat0) == index0
        points0, index1 = points0[keep], index1[keep]
    points1 = torch.stack([index1 % w1, index1 // w1], dim=1)
    return points0.float(), points1.float()
