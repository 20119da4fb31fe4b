"""Local patches around matches: for each match, the psize x psize pixels around its point in each image, read
nearest-neighbour from the feature levels (image, conv1, layer1, layer2 by default), L2-normalised per pixel over
the concatenated channels, and the two images' patches stacked along channels (Patch2Pix's regressor input).

The regressed position feeds the next stage through an integer truncation, so a last-bit difference can move a
patch by a pixel: the normalisation and layout follow the reference's operation order exactly (sum over the
channel dim of a channels-first tensor, pow 0.5, contiguous NCHW), which keeps the refined matches bitwise equal.
Patches are gathered with index_select on flattened maps straight into one buffer (3x faster than indexing), and
normalised straight into the regressor input (no concatenation copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

NORM_EPS = 1e-6


def patch_indices(coords: Tensor, offsets: Tensor, stride: int, size: int) -> Tensor:
    """(N,) integer pixel coords + (P,) offsets -> (N, P) cell indices at `stride` (floor), clamped to the map."""
    return torch.div(coords[:, None] + offsets, stride, rounding_mode="floor").clamp(0, size // stride - 1)


def pixel_patches(
    levels: Sequence[Tensor], strides: Sequence[int], batch_index: int, points: Tensor, psize: int, out: Tensor
) -> None:
    """Features around integer points (N, 2) = (x, y) of one image, L2-normalised over C, written into `out`
    (N, C, psize, psize), a view of the regressor input of any layout or float dtype (values rounded once).

    levels: feature maps (B, C_l, H / s_l, W / s_l) with strides s_l; level 0 fixes the image size (H, W).
    Pixel (x + dx, y + dy), dx, dy in [-psize/2, psize/2), reads cell floor(. / s_l) of each level, clamped.
    """
    height, width = levels[0].shape[-2:]
    offsets = torch.arange(psize, device=points.device) - psize // 2
    patches = levels[0].new_empty(sum(level.shape[1] for level in levels), len(points) * psize * psize)
    start = 0
    for fmap, stride in zip(levels, strides):
        rows = patch_indices(points[:, 1], offsets, stride, height)
        cols = patch_indices(points[:, 0], offsets, stride, width)
        cells = (rows[:, :, None] * (width // stride) + cols[:, None, :]).reshape(-1)
        flat = fmap[batch_index].reshape(fmap.shape[1], -1)
        torch.index_select(flat, 1, cells, out=patches[start : start + fmap.shape[1]])
        start += fmap.shape[1]
    norm = torch.pow(torch.sum(torch.pow(patches, 2), dim=0) + NORM_EPS, 0.5)
    shape = (len(points), psize, psize)
    torch.div(patches.reshape(-1, *shape), norm.reshape(1, *shape), out=out.transpose(0, 1))


def pair_patches(
    levels0: Sequence[Tensor],
    levels1: Sequence[Tensor],
    strides: Sequence[int],
    batch_index: int,
    matches: Tensor,
    psize: int,
    dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Tensor:
    """(N, 2C, psize, psize) regressor input for matches (N, 4) = (x0, y0, x1, y1) of pair `batch_index`, in `dtype`
    (default: the features') and `memory_format`.  Coordinates are truncated towards zero to integer pixels first,
    as the reference's `.long()`."""
    points = matches.detach().long()
    channels0 = sum(level.shape[1] for level in levels0)
    channels1 = sum(level.shape[1] for level in levels1)
    out = torch.empty(
        (len(points), channels0 + channels1, psize, psize),
        dtype=dtype or levels0[0].dtype,
        device=levels0[0].device,
        memory_format=memory_format,
    )
    pixel_patches(levels0, strides, batch_index, points[:, :2], psize, out[:, :channels0])
    pixel_patches(levels1, strides, batch_index, points[:, 2:], psize, out[:, channels0:])
    return out
