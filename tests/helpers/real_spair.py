"""SPair-71k-format pairs made from the real photos of ../shared/data, with exact ground truth: every image is a
crop of one photo, optionally mirrored and rescaled, so a keypoint placed once on the photo lands exactly in every
image.  Mirrored images label the photo point of each keypoint's left/right partner (a mirrored cat's left eye is
where the original's right eye was), as SPair annotates mirrored objects; the flip test then has something to find.

`write_reference_features` writes random features in the GeoAware-SC cache layout (<cat>/<img>_sd.pt, _dino.pt,
_flip) that are consistent with that geometry: each map samples a random field fixed on the photo at its cells'
photo positions, plus a random code per orientation (mirrored views share one) and per-image noise, so nearest
neighbours, PCK and the flip test give non-trivial answers that both implementations must reproduce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from corrlab.datamodules.keypoint_groups import SPAIR_FLIP_PAIRS
from corrlab.models.geoaware.letterbox import Letterbox


@dataclass(frozen=True)
class View:
    """An image made from a photo: photo[y0:y0+h, x0:x0+w], mirrored if `mirror`, then resized by `scale`."""

    name: str
    origin: tuple[int, int]  # (x0, y0)
    size: tuple[int, int]  # (h, w) of the crop
    mirror: bool
    scale: float

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return round(self.size[0] * self.scale), round(self.size[1] * self.scale)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Photo pixels (N, 2) -> image pixels (continuous, pixel-edge convention: flips and resizes are exact)."""
        out = points - np.array(self.origin, dtype=np.float64)
        if self.mirror:
            out[:, 0] = self.size[1] - out[:, 0]
        return out * self.scale

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        out = points / self.scale
        if self.mirror:
            out[:, 0] = self.size[1] - out[:, 0]
        return out + np.array(self.origin, dtype=np.float64)


@dataclass(frozen=True)
class Category:
    photo: str  # under the shared data folder
    num_ids: int  # keypoint ids 0..num_ids-1, all placed (so every id of the table is used, as in the real split)
    region: tuple[int, int, int, int]  # photo box (x0, y0, x1, y1) where the keypoints are placed
    views: tuple[View, ...]


def _views(stem: str, x: int, y: int) -> tuple[View, ...]:
    """Four images of one photo: plain, shifted and shrunk, mirrored, mirrored shifted and enlarged."""
    return (
        View(f"{stem}1", (x, y), (360, 480), False, 1.0),
        View(f"{stem}2", (x + 40, y + 24), (360, 480), False, 0.8),
        View(f"{stem}3", (x - 30, y + 16), (360, 480), True, 1.0),
        View(f"{stem}4", (x + 20, y - 20), (400, 440), True, 1.2),
    )


CATEGORIES = {
    "cat": Category(
        "megadepth/loftr_pytorch_sample/5122787062_7ef463a806_o.jpg",
        15,
        (420, 660, 800, 900),
        _views("2011_00010", 380, 620),
    ),
    "car": Category("hpatches/partial_pairs/v_boat/1.png", 30, (240, 180, 580, 440), _views("2011_00020", 200, 140)),
    "aeroplane": Category(
        "hpatches/partial_pairs/v_calder/1.ppm", 25, (200, 320, 520, 560), _views("2011_00030", 160, 280)
    ),
}
TEST_PAIRS = ((0, 1), (0, 2), (3, 1), (2, 3))  # view indices: plain, mirrored, mirrored, both mirrored
ALL_PAIRS = tuple((i, j) for i in range(4) for j in range(4) if i != j)


def partner(category: str, num_ids: int) -> np.ndarray:
    """Left/right partner of every id (itself when it has none), from the SPair flip table."""
    out = np.arange(num_ids)
    for a, b in SPAIR_FLIP_PAIRS[category]:
        out[a], out[b] = b, a
    return out


def photo_keypoints(category: str, seed: int = 0) -> np.ndarray:
    """(num_ids, 2) photo positions of a category's keypoints, uniform in its region."""
    spec = CATEGORIES[category]
    rng = np.random.default_rng([seed, spec.num_ids])
    x0, y0, x1, y1 = spec.region
    return np.stack([rng.uniform(x0, x1, spec.num_ids), rng.uniform(y0, y1, spec.num_ids)], -1)


def image_keypoints(category: str, view: View, index: int, seed: int = 0) -> dict[int, list[float]]:
    """Visible keypoints of one image by id: inside the image (4 px margin) and not dropped (1 in 5, seeded)."""
    spec = CATEGORIES[category]
    points = photo_keypoints(category, seed)
    if view.mirror:
        points = points[partner(category, spec.num_ids)]
    uv = view.to_image(points)
    h, w = view.shape
    inside = (uv[:, 0] > 4) & (uv[:, 0] < w - 4) & (uv[:, 1] > 4) & (uv[:, 1] < h - 4)
    kept = np.random.default_rng([seed, index, 7]).uniform(size=spec.num_ids) > 0.2
    if index == 0:
        kept[:] = True  # every id is used somewhere (the reference renumbers its tables otherwise)
    return {
        i: [round(float(uv[i, 0]), 2), round(float(uv[i, 1]), 2)] for i in range(spec.num_ids) if inside[i] and kept[i]
    }


def _bbox(points: dict[int, list[float]], shape: tuple[int, int]) -> list[float]:
    xy = np.array(list(points.values()))
    h, w = shape
    lo, hi = np.maximum(xy.min(0) - 20, 0), np.minimum(xy.max(0) + 20, [w - 1, h - 1])
    return [float(round(v)) for v in (*lo, *hi)]


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_real_spair(
    root: Path, shared: Path, pairs: tuple[tuple[int, int], ...] = TEST_PAIRS, categories: tuple[str, ...] = ()
) -> list[str]:
    """SPair-71k layout under root from the shared photos: `pairs` of every category (or of `categories`) as the
    test split, the cat's second (a mirrored pair) as trn and its first as val.  Returns the test pair names."""
    names: dict[str, list[str]] = {"test": [], "trn": [], "val": []}
    pair_id = 0
    for category, spec in CATEGORIES.items():
        if categories and category not in categories:
            continue
        photo = cv2.imread(str(shared / spec.photo), cv2.IMREAD_COLOR)
        if photo is None:
            raise FileNotFoundError(f"no photo {shared / spec.photo}")
        annotations = []
        for index, view in enumerate(spec.views):
            (x0, y0), (h, w) = view.origin, view.size
            crop = photo[y0 : y0 + h, x0 : x0 + w]
            crop = crop[:, ::-1] if view.mirror else crop
            crop = cv2.resize(np.ascontiguousarray(crop), view.shape[::-1], interpolation=cv2.INTER_LINEAR)
            path = root / "JPEGImages" / category / f"{view.name}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            kps = image_keypoints(category, view, index)
            box = _bbox(kps, view.shape)
            annotations.append((kps, box))
            _write_json(
                root / "ImageAnnotation" / category / f"{view.name}.json",
                {
                    "filename": f"{view.name}.jpg",
                    "category": category,
                    "image_width": view.shape[1],
                    "image_height": view.shape[0],
                    "bndbox": box,
                    "kps": {str(i): kps.get(i) for i in range(30)},
                    "azimuth_id": 6 if view.mirror else 2,
                },
            )
        splits = {"test": pairs}
        if category == "cat":
            splits |= {"trn": TEST_PAIRS[1:2], "val": TEST_PAIRS[:1]}
        for split, members in splits.items():
            for s, t in members:
                pair_id += 1
                src, trg = spec.views[s], spec.views[t]
                (src_kps, src_box), (trg_kps, trg_box) = annotations[s], annotations[t]
                ids = sorted(set(src_kps) & set(trg_kps))
                name = f"{pair_id:06d}-{src.name}-{trg.name}:{category}"
                names[split].append(name)
                _write_json(
                    root / "PairAnnotation" / split / f"{name}.json",
                    {
                        "pair_id": pair_id,
                        "src_imname": f"{src.name}.jpg",
                        "trg_imname": f"{trg.name}.jpg",
                        "src_imsize": [src.shape[1], src.shape[0], 3],
                        "trg_imsize": [trg.shape[1], trg.shape[0], 3],
                        "src_bndbox": src_box,
                        "trg_bndbox": trg_box,
                        "category": category,
                        "src_kps": [src_kps[i] for i in ids],
                        "trg_kps": [trg_kps[i] for i in ids],
                        "kps_ids": [str(i) for i in ids],
                        "viewpoint_variation": 0,
                        "scale_variation": int(src.scale != trg.scale),
                        "truncation": 0,
                        "occlusion": 0,
                        "mirror": int(src.mirror != trg.mirror),
                    },
                )
    for split, members in names.items():
        for layout in ("large", "small"):
            path = root / "Layout" / layout / f"{split}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{n}\n" for n in members))
    return names["test"]


# --- geometry-consistent random features in the reference's cache layout --------------------------------------

GROUPS = {"s3": (640, 60, 8.0), "s4": (1280, 30, 16.0), "s5": (1280, 15, 32.0), "dino": (768, 60, 8.0)}  # C, n, spacing


def view_cells(view: View, n: int, flip: bool, size: int = 840) -> tuple[np.ndarray, np.ndarray]:
    """Photo positions (n*n, 2) of the cells of an n x n map over the letterboxed image (mirrored first when
    `flip`, as the reference flips the image before its letterbox), and which cells fall inside the image."""
    h, w = view.shape
    centres = (np.arange(n) + 0.5) * size / n
    xy = np.stack(np.meshgrid(centres, centres, indexing="xy"), -1).reshape(-1, 2)
    uv = Letterbox(h, w, size).inverse(torch.from_numpy(xy)).numpy()
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    if flip:
        uv[:, 0] = w - uv[:, 0]
    return view.to_photo(uv), inside


def write_reference_features(
    root: Path, seed: int = 0, noise: float = 0.3, code: float = 0.5, categories: tuple[str, ...] = ()
) -> None:
    """<root>/features/<cat>/<img>_sd[_flip].pt ({s3, s4, s5}: (1, C, n, n) fp32) and _dino[_flip].pt."""
    generator = torch.Generator().manual_seed(seed)
    for category, spec in CATEGORIES.items():
        if categories and category not in categories:
            continue
        extent = np.array([1700.0, 1700.0])  # covers every photo
        fields, codes = {}, {}
        for group, (channels, _, spacing) in GROUPS.items():
            nodes = (extent / spacing).astype(int) + 1
            fields[group] = torch.randn(1, channels, nodes[1], nodes[0], generator=generator)
            codes[group] = code * torch.randn(2, channels, 1, generator=generator)  # per orientation
        for view in spec.views:
            folder = root / "features" / category
            folder.mkdir(parents=True, exist_ok=True)
            for flip in (False, True):
                maps = {}
                for group, (channels, n, _) in GROUPS.items():
                    photo_xy, inside = view_cells(view, n, flip)
                    grid = torch.from_numpy(2 * photo_xy / extent - 1).float().view(1, n * n, 1, 2)
                    sampled = F.grid_sample(fields[group], grid, mode="bilinear", align_corners=False)[0, :, :, 0]
                    sampled = sampled + codes[group][int(view.mirror != flip)]
                    sampled = sampled + noise * torch.randn(channels, n * n, generator=generator)
                    pad = noise * torch.randn(channels, n * n, generator=generator)
                    out = torch.where(torch.from_numpy(inside)[None], sampled, pad)
                    maps[group] = out.view(1, channels, n, n).contiguous()
                suffix = "_flip" if flip else ""
                torch.save({g: maps[g] for g in ("s3", "s4", "s5")}, folder / f"{view.name}_sd{suffix}.pt")
                torch.save(maps["dino"], folder / f"{view.name}_dino{suffix}.pt")
