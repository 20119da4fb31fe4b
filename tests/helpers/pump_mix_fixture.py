"""A tiny aligned-real-pairs folder (SfM120k layout, PUMP's data=pump_mix) with correspondences from a known transform."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from corrlab.datamodules.image_io import read_image_array
from corrlab.datamodules.synthetic import skimage_photo_dir


def similarity(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * math.cos(math.radians(degrees)), scale * math.sin(math.radians(degrees))
    return np.array([[c, -s, tx], [s, c, ty], [0.0, 0.0, 1.0]])


def grid_corres(H: np.ndarray, height: int, width: int, step: int = 16) -> np.ndarray:
    ys, xs = np.mgrid[step // 2 : height : step, step // 2 : width : step]
    p1 = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    p2 = p1 @ H[:2, :2].T + H[:2, 2]
    return np.concatenate([p1, p2], 1)


def write_aligned_pairs(root: Path, pairs: int = 2) -> Path:
    """A tiny SfM120k-layout dataset: photo crops and their similarity-warped views, with (N, 4)
    correspondences from the known transform."""
    (root / "ims" / "sub").mkdir(parents=True)
    (root / "corres").mkdir()
    lines = []
    for i, name in enumerate(["astronaut.png", "coffee.png"][:pairs]):
        photo = read_image_array(skimage_photo_dir() / name)[:256, :300]
        H = similarity(1.3, 10 * (i + 1), 20, -15)
        warped = cv2.warpAffine(photo, H[:2], (360, 320))
        cv2.imwrite(str(root / "ims" / "sub" / f"a{i}.png"), photo[..., ::-1])
        cv2.imwrite(str(root / "ims" / f"b{i}.jpg"), warped[..., ::-1])
        np.save(root / "corres" / f"a{i}.png_b{i}.jpg.npy", grid_corres(H, 256, 300).astype(np.float32))
        lines.append(f"sub/a{i}.png b{i}.jpg")
    (root / "list_pairs.txt").write_text("\n".join(lines) + "\n")
    return root
