"""`data=synthetic_flow`: GLU-Net-style training pairs, an image and its view under a random homography, affine or
thin-plate-spline warp, with the dense ground-truth flow (DenseMatching's synthetic DPED / CityScapes / ADE20K pairs;
here any folder of images, by default the photos scikit-image ships).  The "dynamic" variant pastes an object that
moves independently of the background (COCO objects in the paper; here elliptical cut-outs of other images, or a
folder of object images with masks).

image1 is the source (the image itself), image0 the target: image0(p) = image1(p + flow(p)), so `flow` (H, W, 2)
lives on image 0's grid and points into image 1, as GLU-Net predicts it; `flow_valid` marks the pixels that land
inside image 1 and are not occluded by the object.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.datamodules.base import PairDataModule
from corrlab.datamodules.image_io import read_image_array, to_tensor
from corrlab.datamodules.pair_dataset import PairDataset
from corrlab.datamodules.random_homography import HomographySampler
from corrlab.datamodules.synthetic import TEST_PHOTOS, TRAIN_PHOTOS, VAL_PHOTOS, skimage_photo_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp")
TRANSFORMS = ("homography", "affine", "tps")


def list_images(root: Path) -> list[Path]:
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"synthetic_flow: no images ({', '.join(IMAGE_SUFFIXES)}) under data.root='{root}'")
    return images


def tps_displacement(rng: np.random.Generator, h: int, w: int, grid: int, magnitude: float) -> np.ndarray:
    """(H, W, 2) smooth displacement: a thin-plate spline through a grid x grid lattice of control points each
    moved by up to `magnitude` x the image size."""
    ys, xs = np.meshgrid(np.linspace(0, h - 1, grid), np.linspace(0, w - 1, grid), indexing="ij")
    ctrl = np.stack([xs.ravel(), ys.ravel()], 1)
    shift = rng.uniform(-magnitude, magnitude, ctrl.shape) * np.array([w, h])
    n = len(ctrl)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        r2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-12)), 0.0)

    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = kernel(ctrl, ctrl)
    system[:n, n:] = np.c_[np.ones(n), ctrl]
    system[n:, :n] = system[:n, n:].T
    coeffs = np.linalg.solve(system, np.r_[shift, np.zeros((3, 2))])
    py, px = np.mgrid[0:h, 0:w]
    points = np.stack([px.ravel(), py.ravel()], 1).astype(np.float64)
    out = kernel(points, ctrl) @ coeffs[:n] + np.c_[np.ones(len(points)), points] @ coeffs[n:]
    return out.reshape(h, w, 2)


def random_affine(
    rng: np.random.Generator, h: int, w: int, rotation_deg: float, scale: float, shift: float
) -> np.ndarray:
    """3 x 3 affine about the image centre: rotation, anisotropic scale, shear-free, translation."""
    angle = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg))
    sx, sy = np.exp(rng.uniform(-scale, scale, 2))
    c, s = np.cos(angle), np.sin(angle)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    A = np.array([[c, -s], [s, c]]) @ np.diag([sx, sy])
    t = centre - A @ centre + rng.uniform(-shift, shift, 2) * np.array([w, h])
    return np.r_[np.c_[A, t], [[0, 0, 1]]]


def apply_h(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = points @ H[:2, :2].T + H[:2, 2]
    z = points @ H[2, :2] + H[2, 2]
    return p / z[..., None] if H[2, :2].any() else p


class SyntheticFlowPairs(PairDataset):
    def __init__(
        self,
        images: Sequence[Path],
        num_pairs: int,
        image_size: Sequence[int],
        transforms: Sequence[str],
        homography: HomographySampler,
        affine: dict,
        tps: dict,
        dynamic: bool,
        object_proba: float,
        deterministic: bool,
        seed: int,
        split: str,
    ) -> None:
        self.images = list(images)
        self.num_pairs = num_pairs
        self.height, self.width = int(image_size[0]), int(image_size[1])
        self.transforms = list(transforms)
        self.homography, self.affine, self.tps = homography, dict(affine), dict(tps)
        self.dynamic, self.object_proba = dynamic, object_proba
        self.deterministic, self.seed, self.split = deterministic, seed, split
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.num_pairs

    def pair_names(self) -> list[str]:
        return [f"{self.split}/{self.images[i % len(self.images)].stem}/{i:05d}" for i in range(self.num_pairs)]

    def _photo(self, index: int) -> np.ndarray:
        if index not in self._cache:
            self._cache[index] = read_image_array(self.images[index]).astype(np.float32) / 255.0
        return self._cache[index]

    def _crop(self, rng: np.random.Generator, index: int) -> np.ndarray:
        """A random crop of the image resized to the output size (area when shrinking)."""
        photo = self._photo(index)
        h, w = self.height, self.width
        side = rng.uniform(0.6, 1.0) * min(photo.shape[0] / h, photo.shape[1] / w)
        ch, cw = max(int(h * side), 8), max(int(w * side), 8)
        y0, x0 = rng.integers(0, photo.shape[0] - ch + 1), rng.integers(0, photo.shape[1] - cw + 1)
        crop = photo[y0 : y0 + ch, x0 : x0 + cw]
        interpolation = cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR
        return cv2.resize(crop, (w, h), interpolation=interpolation)

    def _mapping(self, rng: np.random.Generator) -> np.ndarray:
        """(H, W, 2) source position of every target pixel."""
        h, w = self.height, self.width
        py, px = np.mgrid[0:h, 0:w]
        grid = np.stack([px, py], -1).astype(np.float64)
        kind = self.transforms[rng.integers(len(self.transforms))]
        if kind == "homography":
            return apply_h(self.homography.sample(rng, h, w), grid)
        affine = random_affine(rng, h, w, **self.affine)
        mapping = apply_h(affine, grid)
        if kind == "tps":
            mapping = mapping + tps_displacement(rng, h, w, **self.tps)
        return mapping

    def _paste_object(self, rng, index, source, target, mapping, valid):
        """An elliptical cut-out of another image placed in the source, and moved by its own affine in the target."""
        h, w = self.height, self.width
        other = self._crop(rng, int(rng.integers(len(self.images))) if len(self.images) > 1 else index)
        ry, rx = rng.uniform(0.1, 0.25) * h, rng.uniform(0.1, 0.25) * w
        cy, cx = rng.uniform(ry, h - ry), rng.uniform(rx, w - rx)
        py, px = np.mgrid[0:h, 0:w]
        in_source = ((px - cx) / rx) ** 2 + ((py - cy) / ry) ** 2 <= 1.0
        source = np.where(in_source[..., None], other, source)
        motion = random_affine(rng, h, w, rotation_deg=30.0, scale=0.3, shift=0.15)  # target -> source for the object
        grid = np.stack([px, py], -1).astype(np.float64)
        object_mapping = apply_h(motion, grid)
        ox, oy = object_mapping[..., 0], object_mapping[..., 1]
        in_target = ((ox - cx) / rx) ** 2 + ((oy - cy) / ry) ** 2 <= 1.0
        object_pixels = cv2.remap(other, ox.astype(np.float32), oy.astype(np.float32), cv2.INTER_LINEAR)
        target = np.where(in_target[..., None], object_pixels, target)
        bx, by = mapping[..., 0], mapping[..., 1]
        occluded = ((bx - cx) / rx) ** 2 + ((by - cy) / ry) ** 2 <= 1.0  # background now hidden by the object
        valid = (valid & ~occluded) | in_target
        mapping = np.where(in_target[..., None], object_mapping, mapping)
        return source, target, mapping, valid

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_pairs:  # pairs are generated for any index: bound them, so iteration stops
            raise IndexError(f"synthetic_flow {self.split}: pair {index} out of range ({self.num_pairs} pairs)")
        rng = np.random.default_rng([self.seed, index] if self.deterministic else [self.seed, self.epoch, index])
        image_index = index % len(self.images)
        source = self._crop(rng, image_index)
        mapping = self._mapping(rng)
        h, w = self.height, self.width
        valid = (
            (mapping[..., 0] >= 0) & (mapping[..., 0] <= w - 1) & (mapping[..., 1] >= 0) & (mapping[..., 1] <= h - 1)
        )
        target = cv2.remap(
            source, mapping[..., 0].astype(np.float32), mapping[..., 1].astype(np.float32), cv2.INTER_LINEAR
        )
        if self.dynamic and rng.uniform() < self.object_proba:
            source, target, mapping, valid = self._paste_object(rng, image_index, source, target, mapping, valid)
        py, px = np.mgrid[0:h, 0:w]
        flow = mapping - np.stack([px, py], -1)
        size = torch.tensor([h, w])
        name = f"{self.split}/{self.images[image_index].stem}/{index:05d}"
        view = name if self.deterministic else f"{name}/epoch{self.epoch}"  # both views are made for this pair only
        return {
            "image0": to_tensor((np.clip(target, 0, 1) * 255).round().astype(np.uint8)),
            "image1": to_tensor((np.clip(source, 0, 1) * 255).round().astype(np.uint8)),
            "flow": torch.from_numpy(flow).float(),
            "flow_valid": torch.from_numpy(valid),
            "name": name,
            "image0_id": f"{view}/view0",
            "image1_id": f"{view}/view1",
            "size0": size,
            "size1": size.clone(),
            "scale0": torch.ones(2),
            "scale1": torch.ones(2),
        }


class SyntheticFlowDataModule(PairDataModule):
    """Train / val / test pairs from disjoint image sets: `root` None uses scikit-image's photos (split as in
    data=synthetic); a folder is split by sorted file order into train and the last `num_holdout_images` x 2 images
    for val and test."""

    name = "synthetic_flow"
    default_benchmark = "synthetic_dense"

    def __init__(
        self,
        root: str | None = None,
        image_size: Sequence[int] = (256, 256),
        num_train_pairs: int = 2000,
        num_val_pairs: int = 32,
        num_test_pairs: int = 64,
        num_holdout_images: int = 2,
        transforms: Sequence[str] = TRANSFORMS,
        homography: dict | None = None,
        affine: dict | None = None,
        tps: dict | None = None,
        dynamic: bool = False,
        object_proba: float = 0.8,
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        unknown = set(transforms) - set(TRANSFORMS)
        if unknown or not transforms:
            raise ValueError(
                f"synthetic_flow transforms must be a non-empty subset of {TRANSFORMS}, got {list(transforms)}"
            )
        if min(image_size) < 64 or any(s % 8 for s in image_size):
            raise ValueError(
                "synthetic_flow image_size must be multiples of 8 and >= 64 (GLU-Net trains at >= 256, PWC-Net at "
                f"multiples of 64), got {image_size}"
            )
        self.root = root
        if root is None:
            photos = skimage_photo_dir()
            self.images = {
                "train": [photos / p for p in TRAIN_PHOTOS],
                "val": [photos / p for p in VAL_PHOTOS],
                "test": [photos / p for p in TEST_PHOTOS],
            }
        else:
            images = list_images(Path(root))
            k = num_holdout_images
            if len(images) < 2 * k + 1:
                raise ValueError(f"synthetic_flow: data.root='{root}' has {len(images)} images, needs >= {2 * k + 1}")
            self.images = {"train": images[: -2 * k], "val": images[-2 * k : -k], "test": images[-k:]}
        self.image_size = tuple(image_size)
        self.num_pairs = {"train": num_train_pairs, "val": num_val_pairs, "test": num_test_pairs}
        self.transforms = list(transforms)
        self.homography = HomographySampler(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in (homography or {}).items()}
        )
        self.affine = {"rotation_deg": 20.0, "scale": 0.2, "shift": 0.1, **(affine or {})}
        self.tps = {"grid": 3, "magnitude": 0.05, **(tps or {})}
        self.dynamic, self.object_proba = dynamic, object_proba

    def make_dataset(self, split: str) -> SyntheticFlowPairs:
        return SyntheticFlowPairs(
            images=self.images[split],
            num_pairs=self.num_pairs[split],
            image_size=self.image_size,
            transforms=self.transforms,
            homography=self.homography,
            affine=self.affine,
            tps=self.tps,
            dynamic=self.dynamic,
            object_proba=self.object_proba,
            deterministic=split != "train",
            seed=self.seed + {"train": 0, "val": 1, "test": 2}[split],
            split=split,
        )

    def benchmark_data(self, split: str) -> BenchmarkData:
        return BenchmarkData(
            dataset="synthetic_flow",
            split=split,
            pair_names=self.pair_names(split),
            ground_truth=("flow", "flow_valid"),
            resize={"mode": "none"},
            extra_spec={
                "root": self.root or "scikit-image photos",
                "images": [p.name for p in self.images[split]],
                "image_size": list(self.image_size),
                "transforms": self.transforms,
                "homography_sampler": self.homography.describe(),
                "affine": self.affine,
                "tps": self.tps,
                "dynamic": self.dynamic,
                "object_proba": self.object_proba,
                "seed": self.seed,
            },
        )
