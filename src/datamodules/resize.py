"""Resize policies with scale bookkeeping (scale = resized / original, per axis): the one place evaluation
images are resized (see docs/evaluation.md, "One resize"), with the references' resampling available."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.geometry.resample import PIL_INTERPOLATIONS, pil_resize

MODES = ("none", "long", "short", "fixed", "letterbox")
TORCH_INTERPOLATIONS = ("bilinear", "bicubic", "area")
DEFAULTS = {"interpolation": "bilinear", "upscale": True}  # left out of describe(): fingerprints stay as before


@dataclass(frozen=True)
class ResizePolicy:
    """mode: none | long (long side = size) | short (short side = size) | fixed (size = [h, w]) | letterbox (long
    side = size, then zero padding at the bottom / right to size x size, so pixel coordinates keep scale only).
    divisible_by floors both sides to a multiple (e.g. 16 for stride-16 networks).  upscale: false never enlarges
    (long / short / letterbox).  interpolation: bilinear | bicubic | area (torch, antialiased when shrinking) or
    pil_bilinear | pil_bicubic (PIL on the 8-bit image, e.g. Patch2Pix's reference)."""

    mode: str = "none"
    size: int | tuple[int, int] | list[int] | None = None
    divisible_by: int = 1
    interpolation: str = "bilinear"
    upscale: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"resize.mode must be one of {MODES}, got '{self.mode}'")
        if self.mode != "none" and self.size is None:
            raise ValueError(f"resize.mode='{self.mode}' needs resize.size")
        if self.mode == "fixed" and (not isinstance(self.size, (list, tuple)) or len(self.size) != 2):
            raise ValueError(f"resize.mode='fixed' needs resize.size=[height, width], got {self.size}")
        if self.interpolation not in (*TORCH_INTERPOLATIONS, *PIL_INTERPOLATIONS):
            valid = ", ".join((*TORCH_INTERPOLATIONS, *PIL_INTERPOLATIONS))
            raise ValueError(f"resize.interpolation must be one of {valid}, got '{self.interpolation}'")

    def content_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the resized image content (before letterbox padding)."""
        if self.mode == "none":
            h, w = height, width
        elif self.mode == "fixed":
            h, w = int(self.size[0]), int(self.size[1])
        else:
            side = min(height, width) if self.mode == "short" else max(height, width)
            factor = float(self.size) / side
            if not self.upscale:
                factor = min(factor, 1.0)
            h, w = round(height * factor), round(width * factor)
        d = self.divisible_by
        return max(d, h // d * d), max(d, w // d * d)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the image a batch holds (the letterbox canvas, or the content)."""
        if self.mode == "letterbox":
            return int(self.size), int(self.size)
        return self.content_size(height, width)

    def scale(self, height: int, width: int) -> Tensor:
        """(sx, sy) = resized / original for an image of this size."""
        h, w = self.content_size(height, width)
        return torch.tensor([w / width, h / height], dtype=torch.float64)

    def __call__(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Resize a 3 x H x W image; return it with its scale (sx, sy)."""
        height, width = image.shape[-2:]
        h, w = self.content_size(height, width)
        scale = torch.tensor([w / width, h / height], dtype=torch.float32)
        if (h, w) != (height, width):
            image = self.resample(image, h, w)
        if self.mode == "letterbox":
            image = F.pad(image, (0, int(self.size) - w, 0, int(self.size) - h))
        return image, scale

    def resample(self, image: Tensor, height: int, width: int) -> Tensor:
        if self.interpolation in PIL_INTERPOLATIONS:
            return pil_resize(image, height, width, self.interpolation)
        options = {} if self.interpolation == "area" else {"align_corners": False, "antialias": True}
        resized = F.interpolate(image[None], size=(height, width), mode=self.interpolation, **options)[0]
        return resized.clamp(0, 1)

    def describe(self) -> dict:
        described = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        return {k: v for k, v in described.items() if k not in DEFAULTS or v != DEFAULTS[k]}
