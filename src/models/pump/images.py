"""Image operations of PUMP's inference: the reference's 8-bit resize, multi-scale downsampling and
rotations, each returning the 3x3 matrix that maps new pixels back to input pixels (pixel centres
at integer coordinates, so a resize by s maps x to (x + 0.5) / s - 0.5; the reference uses x / s)."""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

MIN_SIDE = 4  # the descriptor's 4 x 4 patch embedding: a thinner image has no descriptor cell


def check_image_size(height: int, width: int, what: str) -> None:
    """Refuse an image PUMP cannot describe, naming it (`what`) and the minimum size."""
    if min(height, width) < MIN_SIDE:
        raise ValueError(
            f"{what} is {height}x{width} pixels (H x W) as PUMP sees it: too small, PUMP needs at least "
            f"{MIN_SIDE} pixels on each side"
        )


def scaling(sx: float, sy: float) -> Tensor:
    """3x3 matrix from pixels of an image resized by (sx, sy) back to the input's pixels."""
    return torch.tensor([[1 / sx, 0, (1 / sx - 1) / 2], [0, 1 / sy, (1 / sy - 1) / 2], [0, 0, 1]], dtype=torch.float64)


def max_side_shape(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The reference's `--resize` size: longer side = max_side (floored), never enlarged."""
    if max_side <= 0 or max(height, width) <= max_side:
        return height, width
    return height * max_side // max(height, width), width * max_side // max(height, width)


def resize_max_side(image: Tensor, max_side: int) -> tuple[Tensor, Tensor]:
    """The reference's `--resize` on a (3, H, W) uint8 image: area interpolation, 8-bit truncation.
    Returns the image and the 3x3 matrix new pixel -> input pixel."""
    height, width = image.shape[-2:]
    new = max_side_shape(height, width, max_side)
    if new == (height, width):
        return image, torch.eye(3, dtype=torch.float64)
    resized = F.interpolate(image[None].float(), size=new, mode="area")[0].clamp(0, 255).to(torch.uint8)
    return resized, scaling(new[1] / width, new[0] / height)


def matcher_input(image: Tensor, matching: dict) -> tuple[Tensor, Tensor]:
    """The one input resize of PUMP, shared by PUMP.match and `python -m corrlab.models.pump.cli`: the
    reference's `--resize` on the 8-bit image (a float image in [0, 1] is rounded to 8 bits first), none in the
    recursive mode (its --resize is the coarse size).  Returns the float image in [0, 1] and new -> input pixel."""
    if image.dtype != torch.uint8:
        image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    max_side = 0 if matching["mode"] == "recursive" else int(matching["resize"])
    image, back = resize_max_side(image, max_side)
    return image.float() / 255, back


def warn_if_resized_twice(batch: dict, matching: dict) -> None:
    """Warn when `matcher_input` would resize images the datamodule already resized (the reference resizes once)."""
    resized_before = any(key in batch and not bool((batch[key] == 1).all()) for key in ("scale0", "scale1"))
    max_side = 0 if matching["mode"] == "recursive" else int(matching["resize"])
    shapes = [tuple(batch[key].shape[-2:]) for key in ("image0", "image1")]
    if resized_before and any(max_side_shape(h, w, max_side) != (h, w) for h, w in shapes):
        warnings.warn(
            f"images resized twice: by the datamodule to {shapes[0]}, then to a longer side of {max_side} for PUMP's "
            "matching; resize once (give the datamodule no resize, or model.matching.resize=0)",
            stacklevel=3,
        )


def downsample(image: Tensor, factor: float) -> tuple[Tensor, Tensor]:
    """Shrink a (3, H, W) float image by `factor` <= 1 as the reference's multi-scale does: halve
    with 2x2 average pooling while factor <= 0.5, then bicubic.  Returns the image and the 3x3
    matrix new pixel -> input pixel."""
    if factor > 1:
        raise ValueError(f"downsample factor must be <= 1, got {factor}")
    height, width = image.shape[-2:]
    remaining = factor
    while remaining <= 0.5:
        image = F.avg_pool2d(image[None], 2, stride=2)[0]
        remaining *= 2
    if remaining != 1:
        image = F.interpolate(
            image[None], scale_factor=remaining, mode="bicubic", align_corners=False, recompute_scale_factor=False
        )[0]
    return image.clamp(0, 1), scaling(image.shape[-1] / width, image.shape[-2] / height)


def rotate(image: Tensor, degrees: float) -> tuple[Tensor, Tensor]:
    """Rotate a (3, H, W) image by `degrees` (counter-clockwise on screen for positive angles in
    the reference's convention) on a canvas enlarged to hold it (sides floored to multiples of 4);
    exact transposes / flips for multiples of 90.  Returns the image and new pixel -> input pixel."""
    angle = degrees % 360
    _, height, width = image.shape
    if angle in (0, 90, 180, 270):
        return rotate90(image, int(angle))
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    corners = torch.tensor([[0, width, width, 0], [0, 0, height, height]], dtype=torch.float64)
    turned = rot[:2, :2] @ corners
    size = ((turned.max(1).values - turned.min(1).values + 0.5).floor() // 4 * 4).long()
    out_w, out_h = int(size[0]), int(size[1])
    rot[:2, 2] = torch.tensor([width / 2, height / 2], dtype=torch.float64) - rot[:2, :2] @ torch.tensor(
        [out_w / 2, out_h / 2], dtype=torch.float64
    )
    to_unit = lambda w, h: torch.tensor([[w / 2, 0, w / 2], [0, h / 2, h / 2], [0, 0, 1]], dtype=torch.float64)  # noqa: E731
    theta = torch.linalg.inv(to_unit(width - 1, height - 1)) @ rot @ to_unit(out_w - 1, out_h - 1)
    grid = F.affine_grid(theta[None, :2].float(), (1, 3, out_h, out_w), align_corners=True)
    return F.grid_sample(image[None], grid.to(image), align_corners=True)[0], rot


def rotate90(image: Tensor, degrees: int) -> tuple[Tensor, Tensor]:
    """Exact rotation by 0, 90, 180 or 270 degrees; returns the image and new pixel -> input pixel."""
    _, height, width = image.shape
    if degrees == 0:
        return image, torch.eye(3, dtype=torch.float64)
    if degrees == 90:
        back = [[0, -1, width - 1], [1, 0, 0], [0, 0, 1]]
        return image.transpose(1, 2).flip(1), torch.tensor(back, dtype=torch.float64)
    if degrees == 180:
        back = [[-1, 0, width - 1], [0, -1, height - 1], [0, 0, 1]]
        return image.flip(1).flip(2), torch.tensor(back, dtype=torch.float64)
    back = [[0, 1, 0], [-1, 0, height - 1], [0, 0, 1]]
    return image.transpose(1, 2).flip(2), torch.tensor(back, dtype=torch.float64)
