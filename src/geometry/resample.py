"""PIL resampling of float image tensors: the references that read and resize with PIL (Patch2Pix) are
reproduced by resizing the 8-bit values as PIL does (its bicubic differs from torch's, antialiased or not; torch has
no Lanczos)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

PIL_INTERPOLATIONS = {
    "pil_bilinear": Image.Resampling.BILINEAR,
    "pil_bicubic": Image.Resampling.BICUBIC,
    "pil_lanczos": Image.Resampling.LANCZOS,  # GeoAware-SC's letterbox (utils/utils_correspondence.py resize)
}


def pil_resize(image: Tensor, height: int, width: int, interpolation: str) -> Tensor:
    """A 3 x H x W image in [0, 1] resized by PIL on its 8-bit values, as references that read with PIL do."""
    array = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    resized = Image.fromarray(array).resize((width, height), PIL_INTERPOLATIONS[interpolation])
    return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).to(image.device, torch.float32) / 255
