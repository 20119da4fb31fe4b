"""Tiny SPair-71k, PF-Pascal and AP-10K folders in their official layouts, written by the tests.

Each pair's images are two crops of one scikit-image photo, the target crop shifted by `offset`, so a
source point (x, y) is the target point (x - dx, y - dy): the ground truth is exact and matchers find it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from src.datamodules.image_io import read_image_array
from src.datamodules.synthetic import skimage_photo_dir


@dataclass
class FixturePair:
    """Ground truth of one fixture pair, in original pixels."""

    name: str
    category: str
    ids: list[int]
    src_kps: np.ndarray
    trg_kps: np.ndarray
    src_bbox: list[float]
    trg_bbox: list[float]
    src_size: tuple[int, int]  # (H, W)
    trg_size: tuple[int, int]
    trg_visible_extra: list[int] = field(default_factory=list)  # ids visible only in the target
    flags: dict[str, int] = field(default_factory=dict)


def write_crop_pair(photo: str, src_path: Path, trg_path: Path, origin: tuple[int, int], size: tuple[int, int], offset: tuple[int, int]) -> None:
    """Source = photo[y0:y0+h, x0:x0+w]; target = the same window moved by offset (dx, dy)."""
    image = cv2.cvtColor(read_image_array(skimage_photo_dir() / photo), cv2.COLOR_RGB2BGR)
    (x0, y0), (h, w), (dx, dy) = origin, size, offset
    for path, (x, y) in ((src_path, (x0, y0)), (trg_path, (x0 + dx, y0 + dy))):
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image[y : y + h, x : x + w], [cv2.IMWRITE_JPEG_QUALITY, 95])


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


# --- SPair-71k ---------------------------------------------------------------------------------------------

SPAIR_IMAGES = {  # category: (photo, source image, target image, origin, (h, w), offset)
    "cat": ("chelsea.png", "2010_000001", "2010_000002", (120, 40), (160, 200), (16, 8)),
    "car": ("coffee.png", "2010_000003", "2010_000004", (200, 100), (160, 220), (-20, 12)),
}


def spair_pairs() -> dict[str, FixturePair]:
    """The annotated fixture pairs by category (test split)."""
    cat_src = np.array([[60.0, 40.0], [100.0, 42.0], [70.0, 20.0], [96.0, 22.0], [50.0, 120.0], [110.0, 125.0]])
    car_src = np.array([[40.0, 60.0], [150.0, 62.0], [95.0, 100.0], [60.0, 130.0], [140.0, 128.0]])
    return {
        "cat": FixturePair(
            "000001-2010_000001-2010_000002:cat", "cat", [0, 1, 2, 3, 9, 10], cat_src, cat_src - [16, 8],
            [20, 10, 180, 150], [4, 2, 164, 142], (160, 200), (160, 200), trg_visible_extra=[11],
            flags={"viewpoint_variation": 0, "scale_variation": 1, "truncation": 0, "occlusion": 2, "mirror": 0},
        ),
        "car": FixturePair(
            "000002-2010_000003-2010_000004:car", "car", [0, 1, 4, 10, 11], car_src, car_src + [20, -12],
            [10, 30, 200, 150], [30, 18, 220, 138], (160, 220), (160, 220), trg_visible_extra=[13],
            flags={"viewpoint_variation": 2, "scale_variation": 1, "truncation": 3, "occlusion": 0, "mirror": 1},
        ),
    }


def _spair_image_json(name: str, category: str, visible: dict[int, list[float]], bbox: list[float], size: tuple[int, int]) -> dict:
    kps = {str(i): (visible[i] if i in visible else None) for i in range(30)}
    return {"filename": f"{name}.jpg", "category": category, "image_width": size[1], "image_height": size[0],
            "bndbox": bbox, "kps": kps, "azimuth_id": 0}  # fmt: skip


def spair_pair_json(pair: FixturePair) -> dict:
    pair_id, src, trg = pair.name.split(":")[0].split("-")
    return {
        "pair_id": int(pair_id), "src_imname": f"{src}.jpg", "trg_imname": f"{trg}.jpg",
        "src_imsize": [pair.src_size[1], pair.src_size[0], 3], "trg_imsize": [pair.trg_size[1], pair.trg_size[0], 3],
        "src_bndbox": pair.src_bbox, "trg_bndbox": pair.trg_bbox, "category": pair.category,
        "src_kps": pair.src_kps.tolist(), "trg_kps": pair.trg_kps.tolist(), "kps_ids": [str(i) for i in pair.ids],
        **pair.flags,
    }  # fmt: skip


def write_spair(root: Path) -> dict[str, FixturePair]:
    """SPair-71k layout: test = the cat and car pairs; trn = the cat pair; val = the cat pair reversed."""
    pairs = spair_pairs()
    for category, (photo, src, trg, origin, size, offset) in SPAIR_IMAGES.items():
        write_crop_pair(photo, root / "JPEGImages" / category / f"{src}.jpg", root / "JPEGImages" / category / f"{trg}.jpg", origin, size, offset)
        pair = pairs[category]
        src_visible = {i: p.tolist() for i, p in zip(pair.ids, pair.src_kps)}
        trg_visible = {i: p.tolist() for i, p in zip(pair.ids, pair.trg_kps)} | {i: [5.0, 5.0] for i in pair.trg_visible_extra}
        write_json(root / "ImageAnnotation" / category / f"{src}.json", _spair_image_json(src, category, src_visible, pair.src_bbox, pair.src_size))
        write_json(root / "ImageAnnotation" / category / f"{trg}.json", _spair_image_json(trg, category, trg_visible, pair.trg_bbox, pair.trg_size))
    cat = pairs["cat"]
    reverse = FixturePair("000004-2010_000002-2010_000001:cat", "cat", cat.ids, cat.trg_kps, cat.src_kps, cat.trg_bbox, cat.src_bbox,
                          cat.trg_size, cat.src_size, flags=cat.flags)  # fmt: skip
    train = FixturePair("000003-2010_000001-2010_000002:cat", "cat", cat.ids, cat.src_kps, cat.trg_kps, cat.src_bbox, cat.trg_bbox,
                        cat.src_size, cat.trg_size, flags=cat.flags)  # fmt: skip
    splits = {"test": [pairs["cat"], pairs["car"]], "trn": [train], "val": [reverse]}
    for split, members in splits.items():
        for pair in members:
            write_json(root / "PairAnnotation" / split / f"{pair.name}.json", spair_pair_json(pair))
        for layout in ("large", "small"):
            path = root / "Layout" / layout / f"{split}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{p.name}\n" for p in members))
    return pairs
