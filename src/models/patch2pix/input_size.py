"""The network's own input size: Patch2Pix resizes each image so its longer side is at most `max_side` (never
upsampling) and floors both sides to a multiple of stride * pool = 16, then maps matches back."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.geometry.resample import pil_resize

RESAMPLING = ("torch_bicubic", "pil_bicubic")


def network_size(height: int, width: int, max_side: int | None, multiple: int = 16) -> tuple[int, int]:
    """(h, w) the network sees: the reference's `cal_rescale_size` with no upsampling (max_side None or <= 0 keeps
    the size), both sides floored to `multiple`."""
    side = max(height, width)
    target = side if not max_side or max_side <= 0 or max_side > side else max_side
    h = math.floor(height / (side / target) / multiple) * multiple
    w = math.floor(width / (side / target) / multiple) * multiple
    if h < multiple or w < multiple:
        raise ValueError(f"image {height}x{width} is too small for Patch2Pix (both sides must reach {multiple} px)")
    return h, w


def to_network_frame(
    images: Tensor, max_side: int | None, multiple: int = 16, resample: str = "torch_bicubic"
) -> tuple[Tensor, Tensor]:
    """Images (B, 3, H, W) in [0, 1] at the network size and the scale (sx, sy) = network / batch size, for
    corrlab.geometry.scaling.  resample: torch_bicubic (antialiased) or pil_bicubic (the reference's PIL resize
    of the 8-bit image)."""
    if resample not in RESAMPLING:
        raise ValueError(f"model.resample must be one of {', '.join(RESAMPLING)}, got '{resample}'")
    height, width = images.shape[-2:]
    h, w = network_size(height, width, max_side, multiple)
    scale = torch.tensor([w / width, h / height], dtype=torch.float32, device=images.device)
    if (h, w) == (height, width):
        return images, scale
    if resample == "pil_bicubic":
        return torch.stack([pil_resize(image, h, w, "pil_bicubic") for image in images]), scale
    resized = F.interpolate(images, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return resized.clamp(0, 1), scale
