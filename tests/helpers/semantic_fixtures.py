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

from corrlab.datamodules.image_io import read_image_array
from corrlab.datamodules.keypoint_groups import AP10K_KEYPOINTS
from corrlab.datamodules.synthetic import skimage_photo_dir


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


def write_crop_pair(
    photo: str, src_path: Path, trg_path: Path, origin: tuple[int, int], size: tuple[int, int], offset: tuple[int, int]
) -> None:
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
            "000001-2010_000001-2010_000002:cat",
            "cat",
            [0, 1, 2, 3, 9, 10],
            cat_src,
            cat_src - [16, 8],
            [20, 10, 180, 150],
            [4, 2, 164, 142],
            (160, 200),
            (160, 200),
            trg_visible_extra=[11],
            flags={"viewpoint_variation": 0, "scale_variation": 1, "truncation": 0, "occlusion": 2, "mirror": 0},
        ),
        "car": FixturePair(
            "000002-2010_000003-2010_000004:car",
            "car",
            [0, 1, 4, 10, 11],
            car_src,
            car_src + [20, -12],
            [10, 30, 200, 150],
            [30, 18, 180, 138],
            (160, 220),
            (160, 220),
            trg_visible_extra=[13],
            flags={"viewpoint_variation": 2, "scale_variation": 1, "truncation": 3, "occlusion": 0, "mirror": 1},
        ),
    }


def _spair_image_json(
    name: str, category: str, visible: dict[int, list[float]], bbox: list[float], size: tuple[int, int]
) -> dict:
    kps = {str(i): (visible[i] if i in visible else None) for i in range(30)}
    return {
        "filename": f"{name}.jpg",
        "category": category,
        "image_width": size[1],
        "image_height": size[0],
        "bndbox": bbox,
        "kps": kps,
        "azimuth_id": 0,
    }


def spair_pair_json(pair: FixturePair) -> dict:
    pair_id, src, trg = pair.name.split(":")[0].split("-")
    return {
        "pair_id": int(pair_id),
        "src_imname": f"{src}.jpg",
        "trg_imname": f"{trg}.jpg",
        "src_imsize": [pair.src_size[1], pair.src_size[0], 3],
        "trg_imsize": [pair.trg_size[1], pair.trg_size[0], 3],
        "src_bndbox": pair.src_bbox,
        "trg_bndbox": pair.trg_bbox,
        "category": pair.category,
        "src_kps": pair.src_kps.tolist(),
        "trg_kps": pair.trg_kps.tolist(),
        "kps_ids": [str(i) for i in pair.ids],
        **pair.flags,
    }


def write_spair(root: Path) -> dict[str, FixturePair]:
    """SPair-71k layout: test = the cat and car pairs; trn = the cat pair; val = the cat pair reversed."""
    pairs = spair_pairs()
    for category, (photo, src, trg, origin, size, offset) in SPAIR_IMAGES.items():
        write_crop_pair(
            photo,
            root / "JPEGImages" / category / f"{src}.jpg",
            root / "JPEGImages" / category / f"{trg}.jpg",
            origin,
            size,
            offset,
        )
        pair = pairs[category]
        src_visible = {i: p.tolist() for i, p in zip(pair.ids, pair.src_kps)}
        trg_visible = {i: p.tolist() for i, p in zip(pair.ids, pair.trg_kps)} | {
            i: [5.0, 5.0] for i in pair.trg_visible_extra
        }
        write_json(
            root / "ImageAnnotation" / category / f"{src}.json",
            _spair_image_json(src, category, src_visible, pair.src_bbox, pair.src_size),
        )
        write_json(
            root / "ImageAnnotation" / category / f"{trg}.json",
            _spair_image_json(trg, category, trg_visible, pair.trg_bbox, pair.trg_size),
        )
    cat = pairs["cat"]
    reverse = FixturePair(
        "000004-2010_000002-2010_000001:cat",
        "cat",
        cat.ids,
        cat.trg_kps,
        cat.src_kps,
        cat.trg_bbox,
        cat.src_bbox,
        cat.trg_size,
        cat.src_size,
        flags=cat.flags,
    )
    train = FixturePair(
        "000003-2010_000001-2010_000002:cat",
        "cat",
        cat.ids,
        cat.src_kps,
        cat.trg_kps,
        cat.src_bbox,
        cat.trg_bbox,
        cat.src_size,
        cat.trg_size,
        flags=cat.flags,
    )
    splits = {"test": [pairs["cat"], pairs["car"]], "trn": [train], "val": [reverse]}
    for split, members in splits.items():
        for pair in members:
            write_json(root / "PairAnnotation" / split / f"{pair.name}.json", spair_pair_json(pair))
        for layout in ("large", "small"):
            path = root / "Layout" / layout / f"{split}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{p.name}\n" for p in members))
    return pairs


# --- PF-Pascal ---------------------------------------------------------------------------------------------

PASCAL_IMAGES = {  # class id (1-based): (photo, source, target, origin, (h, w), offset)
    8: ("chelsea.png", "2009_000001", "2009_000002", (100, 60), (150, 180), (10, -6)),  # cat
    5: ("coffee.png", "2009_000003", "2009_000004", (220, 80), (170, 140), (-8, 14)),  # bottle
}


def pascal_pairs() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Source and target keypoints (N, 2) of the PF-Pascal fixture pairs by class id."""
    cat = np.array([[30.0, 40.0], [90.0, 35.0], [120.0, 100.0], [60.0, 110.0]])
    bottle = np.array([[20.0, 30.0], [70.0, 45.0], [100.0, 120.0]])
    return {8: (cat, cat - [10, -6]), 5: (bottle, bottle - [-8, 14])}


def _coordinates(points: np.ndarray) -> list[str]:
    return [";".join(f"{v:g}" for v in points[:, 0]), ";".join(f"{v:g}" for v in points[:, 1])]


def write_pfpascal(root: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """PF-Pascal layout: test = both pairs, val = the cat pair, train CSV (flip column) + .mat annotations."""
    pairs = pascal_pairs()
    images = root / "PF-dataset-PASCAL" / "JPEGImages"
    for photo, src, trg, origin, size, offset in PASCAL_IMAGES.values():
        write_crop_pair(photo, images / f"{src}.jpg", images / f"{trg}.jpg", origin, size, offset)
    rows = {}
    for class_id, (_, src, trg, *_) in PASCAL_IMAGES.items():
        source, target = pairs[class_id]
        rows[class_id] = ",".join(
            [
                f"PF-dataset-PASCAL/JPEGImages/{src}.jpg",
                f"PF-dataset-PASCAL/JPEGImages/{trg}.jpg",
                str(class_id),
                *_coordinates(source),
                *_coordinates(target),
            ]
        )
    header = "source_image,target_image,class,XA,YA,XB,YB\n"
    (root / "test_pairs_pf_pascal.csv").write_text(header + rows[8] + "\n" + rows[5] + "\n")
    (root / "val_pairs_pf_pascal.csv").write_text(header + rows[8] + "\n")
    (root / "train_pairs_pf_pascal.csv").write_text(
        "source_image,target_image,class,flip\n"
        "PF-dataset-PASCAL/JPEGImages/2009_000001.jpg,PF-dataset-PASCAL/JPEGImages/2009_000002.jpg,8,0\n"
        "PF-dataset-PASCAL/JPEGImages/2009_000001.jpg,PF-dataset-PASCAL/JPEGImages/2009_000002.jpg,8,1\n"
    )
    source, target = pairs[8]
    with_gap = lambda points: np.vstack([points, [np.nan, np.nan]])  # noqa: E731  a 5th keypoint invisible in both
    for stem, points in (("2009_000001", with_gap(source)), ("2009_000002", with_gap(target))):
        path = root / "PF-dataset-PASCAL" / "Annotations" / "cat" / f"{stem}.mat"
        path.parent.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(str(path), {"kps": points, "bbox": np.array([[1, 1, 100, 100]])})
    return pairs


# --- AP-10K (original release) ------------------------------------------------------------------------------

AP10K_SPECIES = {"cat": ("Felidae", 55), "lion": ("Felidae", 12), "dog": ("Canidae", 6)}  # usable images per species


def write_ap10k(root: Path, image_size: tuple[int, int] = (24, 32)) -> dict[str, list[str]]:
    """Original AP-10K layout (annotations/ap10k-*-split1.json, data/*.jpg) with tiny noise images.

    Beyond the usable images: one cat image holds two animals (crowded) and one cat animal has only 2
    labelled keypoints; dog images 4 and 5 label the disjoint keypoints {3,4,5} and {0,1,2}.
    Returns the usable image stems per species, in id order.
    """
    rng = np.random.default_rng(0)
    h, w = image_size
    categories = [
        {"id": i + 1, "name": name, "supercategory": family, "keypoints": list(AP10K_KEYPOINTS)}
        for i, (name, (family, _)) in enumerate(AP10K_SPECIES.items())
    ]
    images, annotations, usable = [], [], {}
    next_id = 1

    def add(category_id: int, visible: list[int], animals: int = 1) -> str:
        nonlocal next_id
        image_id, next_id = next_id, next_id + 1
        stem = f"{image_id:012d}"
        images.append({"id": image_id, "file_name": f"{stem}.jpg", "width": w, "height": h})
        for _ in range(animals):
            kps = np.zeros((17, 3))
            kps[visible, 0], kps[visible, 1], kps[visible, 2] = (
                rng.uniform(1, w - 2, len(visible)),
                rng.uniform(1, h - 2, len(visible)),
                2,
            )
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id,
                    "bbox": [2.0, 3.0, 20.0, 15.0],
                    "keypoints": kps.ravel().tolist(),
                    "num_keypoints": len(visible),
                    "iscrowd": 0,
                }
            )
        (root / "data").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "data" / f"{stem}.jpg"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        return stem

    everything = list(range(17))
    for category_id, (species, (_, count)) in enumerate(AP10K_SPECIES.items(), 1):
        usable[species] = []
        for k in range(count):
            visible = everything if species != "dog" or k < 4 else ([3, 4, 5] if k == 4 else [0, 1, 2])
            usable[species].append(add(category_id, visible))
    add(1, everything, animals=2)  # crowded cat image
    add(1, [0, 1])  # too few keypoints
    files = {
        "train": slice(0, None, 3),
        "val": slice(1, None, 3),
        "test": slice(2, None, 3),
    }  # images spread over the 3 files
    for split, part in files.items():
        ids = {image["id"] for image in images[part]}
        data = {
            "images": images[part],
            "annotations": [a for a in annotations if a["image_id"] in ids],
            "categories": categories,
        }
        write_json(root / "annotations" / f"ap10k-{split}-split1.json", data)
    return usable
