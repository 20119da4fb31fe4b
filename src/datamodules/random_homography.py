"""Random homographies around an image centre: scale, rotation, perspective and translation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class HomographySampler:
    """Ranges of the random homography, in coordinates centred on the image and divided by half its
    larger side.  scale: [min, max] (log-uniform); rotation_deg: max |angle|; perspective: max |p|
    of the projective row; translation: max |shift| as a fraction of half the larger side."""

    scale: tuple[float, float] = (0.8, 1.25)
    rotation_deg: float = 20.0
    perspective: float = 0.1
    translation: float = 0.1

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A 3x3 homography mapping pixels of an image of this size to pixels of its warped view."""
        scale = float(np.exp(rng.uniform(np.log(self.scale[0]), np.log(self.scale[1]))))
        angle = np.deg2rad(rng.uniform(-self.rotation_deg, self.rotation_deg))
        px, py = rng.uniform(-self.perspective, self.perspective, size=2)
        tx, ty = rng.uniform(-self.translation, self.translation, size=2)
        cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
        similarity = np.array([[cos, -sin, tx], [sin, cos, ty], [0.0, 0.0, 1.0]])
        projective = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [px, py, 1.0]])
        half = max(height, width) / 2.0
        to_centred = np.array(
            [[1 / half, 0, -(width - 1) / 2 / half], [0, 1 / half, -(height - 1) / 2 / half], [0, 0, 1]]
        )
        H = np.linalg.inv(to_centred) @ projective @ similarity @ to_centred
        return H / H[2, 2]

    def describe(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
