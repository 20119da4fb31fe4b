"""Resize policies with scale bookkeeping (scale = resized / original, per axis)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

MODES = ("none", "long", "short", "fixed")


@dataclass(frozen=True)
class ResizePolicy:
    """mode: none | long (long side = size) | short (short side = size) | fixed (size = [h, w]).
    divisible_by floors both sides to a multiple (e.g. 16 for stride-16 networks)."""

    mode: str = "none"
    size: int | tuple[int, int] | list[int] | None = None
    divisible_by: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"resize.mode must be one of {MODES}, got '{self.mode}'")
        if self.mode != "none" and self.size is None:
            raise ValueError(f"resize.mode='{self.mode}' needs resize.size")
        if self.mode == "fixed" and (not isinstance(self.size, (list, tuple)) or len(self.size) != 2):
            raise ValueError(f"resize.mode='fixed' needs resize.size=[height, width], got {self.size}")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.mode == "none":
            h, w = height, width
        elif self.mode == "fixed":
            h, w = int(self.size[0]), int(self.size[1])
        else:
            side = max(height, width) if self.mode == "long" else min(height, width)
            factor = float(self.size) / side
            h, w = round(height * factor), round(width * factor)
        d = self.divisible_by
        return max(d, h // d * d), max(d, w // d * d)

    def scale(self, height: int, width: int) -> Tensor:
        """(sx, sy) = resized / original for an image of this size."""
        h, w = self.output_size(height, width)
        return torch.tensor([w / width, h / height], dtype=torch.float64)

    def __call__(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Resize a 3 x H x W image; return it with its scale (sx, sy)."""
        height, width = image.shape[-2:]
        h, w = self.output_size(height, width)
        scale = torch.tensor([w / width, h / height], dtype=torch.float32)
        if (h, w) == (height, width):
            return image, scale
        resized = F.interpolate(image[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
        return resized.clamp(0, 1), scale

    def describe(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
