"""Reading images as float RGB tensors in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from corrlab.datamodules.errors import UnreadableFileError


def read_image_array(path: str | Path) -> np.ndarray:
    """H x W x 3 uint8 RGB; raises UnreadableFileError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(path, "no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableFileError(path, "not a readable image (corrupt or unsupported format)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_tensor(image: np.ndarray) -> Tensor:
    """H x W x 3 uint8 -> 3 x H x W float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


def read_image(path: str | Path) -> Tensor:
    """3 x H x W float RGB in [0, 1]."""
    return to_tensor(read_image_array(path))
