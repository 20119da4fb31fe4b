"""Reading images as float RGB tensors in [0, 1], in stored-pixel order (EXIF orientation ignored, as
annotations and the reference implementations' PIL reads are), refusing truncated files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from corrlab.datamodules.errors import UnreadableFileError

JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
PIL_8BIT_MODES = ("RGB", "RGBA", "L", "LA", "P")  # decoded by PIL to the same pixels as OpenCV, without libpng's noise


def check_jpeg_complete(path: Path) -> None:
    """Raise when a JPEG is truncated (OpenCV decodes such a file partially, grey below the cut, and
    only libjpeg's nameless "Premature end of JPEG file" says so).  A file ending in the end-of-image
    marker passes at once; any other JPEG (trailing bytes after the marker, or a cut) is decoded
    once by PIL, which raises on a cut."""
    with path.open("rb") as handle:
        if handle.read(2) != JPEG_START:
            return
        handle.seek(max(0, path.stat().st_size - 64))
        if handle.read().rstrip(b"\x00\r\n ").endswith(JPEG_END):
            return
    try:
        with Image.open(path) as image:
            image.load()
    except OSError as error:
        raise UnreadableFileError(path, f"truncated or corrupt JPEG ({error})") from error


def read_image_array(path: str | Path) -> np.ndarray:
    """H x W x 3 uint8 RGB in stored-pixel order; raises UnreadableFileError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(path, "no such file")
    if path.suffix.lower() == ".png":
        png = read_png(path)
        if png is not None:
            return png
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise UnreadableFileError(path, "not a readable image (corrupt or unsupported format)")
    check_jpeg_complete(path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_png(path: Path) -> np.ndarray | None:
    """An 8-bit PNG through PIL (OpenCV's libpng prints nameless "libpng warning: iCCP ..." lines for common
    colour profiles); None for other modes (16-bit), which OpenCV reads as before."""
    try:
        with Image.open(path) as image:
            if image.mode not in PIL_8BIT_MODES:
                return None
            return np.array(image.convert("RGB"))  # writable (np.asarray is read-only: torch warns on it)
    except OSError as error:
        raise UnreadableFileError(path, f"not a readable PNG ({error})") from error


def to_tensor(image: np.ndarray) -> Tensor:
    """H x W x 3 uint8 -> 3 x H x W float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


def read_image(path: str | Path) -> Tensor:
    """3 x H x W float RGB in [0, 1]."""
    return to_tensor(read_image_array(path))
