"""Local patches around matches: for each match, the psize x psize pixels around its point in each image, read
nearest-neighbour from the feature levels (image, conv1, layer1, layer2 by default), L2-normalised per pixel over
the concatenated channels, and the two images' patches stacked along channels (Patch2Pix's regressor input).

Patches are gathered channels-last (contiguous feature vectors) straight into one preallocated tensor, returned
as an (N, C, psize, psize) view in torch.channels_last memory format, which the convolutions consume directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

NORM_EPS = 1e-6


def patch_indices(coords: Tensor, offsets: Tensor, stride: int, size: int) -> Tensor:
    """(N,) integer pixel coords + (P,) offsets -> (N, P) cell indices at `stride` (floor), clamped to the map."""
    return torch.div(coords[:, None] + offsets, stride, rounding_mode="floor").clamp(0, size // stride - 1)


def channels_last_levels(levels: Sequence[Tensor]) -> list[Tensor]:
    """Feature maps (B, C, h, w) -> contiguous (B, h, w, C), so a pixel's features are one contiguous vector."""
    return [level.permute(0, 2, 3, 1).contiguous() for level in levels]


def gather_pixel_patches(levels: Sequence[Tensor], strides: Sequence[int], batch_index: int, points: Tensor, out: Tensor) -> None:
    """Write the (N, psize, psize, C) features around integer points (N, 2) = (x, y) of one image into `out`.

    levels: channels-last feature maps (B, H / s_l, W / s_l, C_l) with strides s_l; level 0 fixes the image size.
    Pixel (x + dx, y + dy), dx, dy in [-psize/2, psize/2), reads cell floor(. / s_l) of each level, clamped.
    """
    psize = out.shape[1]
    height, width = levels[0].shape[1:3]
    offsets = torch.arange(psize, device=points.device) - psize // 2
    start = 0
    for fmap, stride in zip(levels, strides):
        rows = patch_indices(points[:, 1], offsets, stride, height)
        cols = patch_indices(points[:, 0], offsets, stride, width)
        out[..., start : start + fmap.shape[-1]] = fmap[batch_index][rows[:, :, None], cols[:, None, :]]
        start += fmap.shape[-1]


def normalize_pixels_(patches: Tensor) -> None:
    """L2-normalise every pixel's feature vector (last dim) in place, eps inside the square root as the reference."""
    patches.div_(torch.sqrt(patches.pow(2).sum(dim=-1, keepdim=True) + NORM_EPS))


def pair_patches(
    levels0: Sequence[Tensor], levels1: Sequence[Tensor], strides: Sequence[int], batch_index: int, matches: Tensor, psize: int
) -> Tensor:
    """(N, 2C, psize, psize) channels-last regressor input for matches (N, 4) = (x0, y0, x1, y1) of pair
    `batch_index`, from channels-last levels (`channels_last_levels`).  Coordinates are truncated towards zero to
    integer pixels first, as the reference's `.long()`."""
    points = matches.detach().long()
    channels = sum(level.shape[-1] for level in levels0)
    out = levels0[0].new_empty(len(matches), psize, psize, 2 * channels)
    for side, (levels, xy) in enumerate(((levels0, points[:, :2]), (levels1, points[:, 2:]))):
        half = out[..., side * channels : (side + 1) * channels]
        gather_pixel_patches(levels, strides, batch_index, xy, half)
        normalize_pixels_(half)
    return out.permute(0, 3, 1, 2)
