"""Writes a tiny ETH3D in the GLU-Net / DenseMatching layout: frames of a photo moved by known homographies.

<root>/multiview_testing/lakeside/images/rig_cam4/<frame>.png, multiview_training/delivery_area/...,
info_ETH3D_files/<scene>_every_5_rate_of_<rate> (pickled list of dicts: source_image, target_image,
Xs, Ys, Xt, Yt as float arrays, the source every 5 frames, the target `rate` frames later).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np

from corrlab.datamodules.eth3d_index import scene_folder
from corrlab.datamodules.image_io import read_image_array
from corrlab.datamodules.synthetic import skimage_photo_dir

SIZE = (240, 320)  # (h, w) of every frame
FIXTURE_SCENES = {"lakeside": "astronaut.png", "delivery_area": "chelsea.png"}
FIXTURE_RATES = (3, 5)
SOURCES = (0, 5)  # source frames: every 5 frames


def frame_homography(frame: int) -> np.ndarray:
    """Photo pixel -> frame pixel: a drift of (3, 1.5) px per frame with a slight zoom and rotation."""
    angle = np.deg2rad(0.3 * frame)
    scale = 1.0 + 0.004 * frame
    return np.array(
        [
            [scale * np.cos(angle), -scale * np.sin(angle), 20 - 3.0 * frame],
            [scale * np.sin(angle), scale * np.cos(angle), 10 - 1.5 * frame],
            [0, 0, 1],
        ]
    )


def frame_path(scene: str, frame: int) -> str:
    return f"{scene_folder(scene)}/images/rig_cam4/{1000 + frame:06d}.png"


def source_to_target(source: int, target: int) -> np.ndarray:
    return frame_homography(target) @ np.linalg.inv(frame_homography(source))


def pair_entry(scene: str, source: int, target: int, rng: np.random.Generator) -> dict:
    """GT points: random source points mapped into the target, plus one near-duplicate of the first
    (same rounded target pixel) and one point that lands outside the target image."""
    h, w = SIZE
    points = rng.uniform([20, 20], [w - 20, h - 20], size=(60, 2))
    H = source_to_target(source, target)
    mapped = cv2.perspectiveTransform(points[None], H)[0]
    keep = (mapped[:, 0] > 1) & (mapped[:, 0] < w - 2) & (mapped[:, 1] > 1) & (mapped[:, 1] < h - 2)
    src, tgt = points[keep], mapped[keep]
    duplicate_tgt = np.round(tgt[:1]) + 0.2  # rounds to the same target pixel as point 0
    duplicate_src = cv2.perspectiveTransform(duplicate_tgt[None], np.linalg.inv(H))[0]
    src = np.concatenate([src, duplicate_src, [[5.0, 5.0]]])
    tgt = np.concatenate([tgt, duplicate_tgt, [[w + 40.0, 10.0]]])
    return {
        "source_image": frame_path(scene, source),
        "target_image": frame_path(scene, target),
        "Xs": src[:, 0].astype(np.float32),
        "Ys": src[:, 1].astype(np.float32),
        "Xt": tgt[:, 0].astype(np.float32),
        "Yt": tgt[:, 1].astype(np.float32),
    }


def write_eth3d(root: Path) -> Path:
    h, w = SIZE
    rng = np.random.default_rng(0)
    (root / "info_ETH3D_files").mkdir(parents=True, exist_ok=True)
    for scene, photo in FIXTURE_SCENES.items():
        image = read_image_array(skimage_photo_dir() / photo)
        for frame in range(max(SOURCES) + max(FIXTURE_RATES) + 1):
            path = root / frame_path(scene, frame)
            path.parent.mkdir(parents=True, exist_ok=True)
            warped = cv2.warpPerspective(image, frame_homography(frame) @ np.diag([0.6, 0.6, 1.0]), (w, h))
            cv2.imwrite(str(path), cv2.cvtColor(warped, cv2.COLOR_RGB2BGR))
        for rate in FIXTURE_RATES:
            entries = [pair_entry(scene, s, s + rate, rng) for s in SOURCES]
            with open(root / "info_ETH3D_files" / f"{scene}_every_5_rate_of_{rate}", "wb") as handle:
                pickle.dump(entries, handle)
    return root
