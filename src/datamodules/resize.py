"""Resize policies with scale bookkeeping (scale = resized / original, per axis): the one place evaluation
images are resized (see docs/evaluation.md, "One resize"), with the references' resampling available."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.geometry.resample import PIL_INTERPOLATIONS, pil_resize

MODES = ("none", "long", "short", "fixed", "letterbox")
PADS = ("bottom_right", "centre")  # where a letterbox puts the padding
TORCH_INTERPOLATIONS = ("bilinear", "bicubic", "area", "area_uint8")
ROUNDINGS = ("round", "floor")  # how long / short sizes become integers (floor: the references' `//`)
# left out of describe(): fingerprints stay as before
DEFAULTS = {"interpolation": "bilinear", "upscale": True, "pad": "bottom_right", "rounding": "round"}


@dataclass(frozen=True)
class ResizePolicy:
    """mode: none | long (long side = size) | short (short side = size) | fixed (size = [h, w]) | letterbox (long
    side = size, short side round(size * short / long), then zero padding to size x size).  pad (letterbox only):
    bottom_right (pixel coordinates keep scale only) | centre (GeoAware-SC: the image starts at `offset` =
    ((size - w) // 2, (size - h) // 2); batches carry it as offset0 / offset1).  divisible_by floors both sides to
    a multiple (e.g. 16 for stride-16 networks).  upscale: false never enlarges (long / short / letterbox).
    interpolation: bilinear | bicubic | area (torch, antialiased when shrinking), area_uint8 (torch area on the 8-bit
    image, truncated to 8 bits: PUMP's reference) or pil_bilinear | pil_bicubic | pil_lanczos (PIL on the 8-bit
    image, e.g. Patch2Pix's and GeoAware-SC's references).  rounding (long / short): round | floor (exact
    side * size // long, as PUMP's and Patch2Pix's references)."""

    mode: str = "none"
    size: int | tuple[int, int] | list[int] | None = None
    divisible_by: int = 1
    interpolation: str = "bilinear"
    upscale: bool = True
    pad: str = "bottom_right"
    rounding: str = "round"

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
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"resize.rounding must be one of {ROUNDINGS}, got '{self.rounding}'")
        if self.pad not in PADS:
            raise ValueError(f"resize.pad must be one of {PADS}, got '{self.pad}'")
        if self.pad != "bottom_right" and self.mode != "letterbox":
            raise ValueError(f"resize.pad='{self.pad}' places letterbox padding: it needs resize.mode=letterbox")

    def content_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the resized image content (before letterbox padding)."""
        if self.mode == "none":
            h, w = height, width
        elif self.mode == "fixed":
            h, w = int(self.size[0]), int(self.size[1])
        elif self.mode == "letterbox" and (self.upscale or max(height, width) >= self.size):
            long = max(height, width)  # GeoAware-SC's rounding: np.around(size * short / long), half to even
            h, w = round(self.size * height / long), round(self.size * width / long)
        else:
            side = min(height, width) if self.mode == "short" else max(height, width)
            target = side if not self.upscale and side <= self.size else int(self.size)
            if self.rounding == "floor":
                h, w = height * target // side, width * target // side
            else:
                factor = target / side
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

    def offset(self, height: int, width: int) -> Tensor:
        """(ox, oy): where the resized image's top-left pixel corner sits on the canvas (0, 0 but centred)."""
        if self.pad != "centre":
            return torch.zeros(2, dtype=torch.float64)
        h, w = self.content_size(height, width)
        return torch.tensor([(int(self.size) - w) // 2, (int(self.size) - h) // 2], dtype=torch.float64)

    def __call__(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Resize a 3 x H x W image; return it with its scale (sx, sy).  A centred letterbox also moves the
        image by an offset, which this scale-only contract cannot carry: use `apply`."""
        if self.pad == "centre":
            raise ValueError(
                "resize.pad=centre moves the image by an offset: only the datamodules whose batches carry "
                "offset0 / offset1 take it (data=spair, pfpascal, ap10k); use pad=bottom_right here"
            )
        image, scale, _ = self.apply(image)
        return image, scale

    def apply(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Resize a 3 x H x W image; return it with its scale (sx, sy) and offset (ox, oy), so that an original
        pixel x sits at (x + 0.5) * s - 0.5 + o (corrlab.geometry.scaling.to_resized)."""
        height, width = image.shape[-2:]
        h, w = self.content_size(height, width)
        scale = torch.tensor([w / width, h / height], dtype=torch.float32)
        offset = self.offset(height, width).float()
        if (h, w) != (height, width):
            image = self.resample(image, h, w)
        if self.mode == "letterbox":
            left, top = int(offset[0]), int(offset[1])
            image = F.pad(image, (left, int(self.size) - w - left, top, int(self.size) - h - top))
        return image, scale, offset

    def resample(self, image: Tensor, height: int, width: int) -> Tensor:
        if self.interpolation in PIL_INTERPOLATIONS:
            return pil_resize(image, height, width, self.interpolation)
        if self.interpolation == "area_uint8":
            eight_bit = (image.clamp(0, 1) * 255).round()
            resized = F.interpolate(eight_bit[None], size=(height, width), mode="area")[0]
            return resized.clamp(0, 255).to(torch.uint8).float() / 255
        options = {} if self.interpolation == "area" else {"align_corners": False, "antialias": True}
        resized = F.interpolate(image[None], size=(height, width), mode=self.interpolation, **options)[0]
        return resized.clamp(0, 1)

    def describe(self) -> dict:
        described = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        return {k: v for k, v in described.items() if k not in DEFAULTS or v != DEFAULTS[k]}


def evaluation_resize(given: dict | None, default: dict | None, method: dict | None) -> ResizePolicy:
    """The one evaluation resize (docs/evaluation.md, "One resize"): the data config's own when it differs from the
    dataset's default (the user chose it), else the method's declared `model.input_resize` (its reference's
    resize and resampling), else the dataset's default."""
    if given is not None and dict(given) != dict(default or {}):
        return ResizePolicy(**given)
    if method is not None:
        return ResizePolicy(**method)
    return ResizePolicy(**(default or {}))
