"""Writes a tiny HPatches dataset in the official hpatches-sequences-release layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from corrlab.datamodules.image_io import read_image_array
from corrlab.datamodules.synthetic import skimage_photo_dir

SEQUENCES = {"i_fixture": "coffee.png", "v_fixture": "astronaut.png", "v_artisans": "chelsea.png"}


def fixture_homography(k: int) -> np.ndarray:
    angle = np.deg2rad(4.0 * k)
    scale = 1.0 - 0.04 * k
    return np.array(
        [
            [scale * np.cos(angle), -scale * np.sin(angle), 6.0 * k],
            [scale * np.sin(angle), scale * np.cos(angle), 3.0 * k],
            [2e-5 * k, 0.0, 1.0],
        ]
    )


def write_hpatches(root: Path, num_images: int = 3, size: tuple[int, int] = (240, 320)) -> Path:
    """Sequences of `num_images` .ppm images warped by known homographies, with H_1_k files.
    v_artisans is one of the 8 'large' sequences the protocol excludes by default."""
    h, w = size
    for sequence, photo in SEQUENCES.items():
        folder = root / sequence
        folder.mkdir(parents=True, exist_ok=True)
        image = cv2.resize(read_image_array(skimage_photo_dir() / photo), (w, h), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / "1.ppm"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        for k in range(2, num_images + 1):
            H = fixture_homography(k)
            warped = cv2.warpPerspective(image, H, (w, h))
            if sequence.startswith("i_"):
                warped = np.clip(warped.astype(np.float32) * (1 - 0.1 * k), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{k}.ppm"), cv2.cvtColor(warped, cv2.COLOR_RGB2BGR))
            np.savetxt(folder / f"H_1_{k}", H)
    return root
