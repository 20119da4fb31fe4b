"""The reference's square letterbox (resize the long side to `size`, centre with zero padding) as an affine map
of pixel coordinates: p_letterbox = p * scale + offset, with its rounding (np.around, int((size - new) / 2))."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from corrlab.datamodules.resize import ResizePolicy


@dataclass(frozen=True)
class Letterbox:
    """Letterbox of an H x W image into size x size."""

    height: int
    width: int
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.width, self.height)

    @property
    def resized(self) -> tuple[int, int]:
        """(h, w) of the image inside the square."""
        if self.height < self.width:
            return round(self.size * self.height / self.width), self.size
        if self.width < self.height:
            return self.size, round(self.size * self.width / self.height)
        return self.size, self.size

    @property
    def offset(self) -> tuple[int, int]:
        """(x, y) of the image's top-left corner in the square."""
        h, w = self.resized
        return int((self.size - w) / 2), int((self.size - h) / 2)

    def forward(self, points: Tensor) -> Tensor:
        """Image pixels (N, 2) -> letterboxed pixels."""
        return points * self.scale + points.new_tensor(self.offset)

    def inverse(self, points: Tensor) -> Tensor:
        """Letterboxed pixels (N, 2) -> image pixels."""
        return (points - points.new_tensor(self.offset)) / self.scale

    def image(self, image: Tensor) -> Tensor:
        """3 x H x W in [0, 1] -> 3 x size x size: PIL Lanczos on the 8-bit image, centred on a zero canvas, as the
        reference's `resize` (the datamodules' ResizePolicy letterbox with pad=centre, one implementation)."""
        policy = ResizePolicy("letterbox", self.size, interpolation="pil_lanczos", pad="centre")
        return policy.apply(image.float())[0]


def mirror_x(points: Tensor, size: int) -> Tensor:
    """Horizontal flip of letterboxed keypoints as the reference does it: x -> size - x."""
    out = points.clone()
    out[..., 0] = size - out[..., 0]
    return out
