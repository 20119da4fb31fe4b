"""Synthetic homography pairs from the photos shipped inside scikit-image's wheel (nothing downloaded)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from corrlab.benchmarks.base import BenchmarkData
from corrlab.datamodules.base import PairDataModule
from corrlab.datamodules.image_io import read_image_array, to_tensor
from corrlab.datamodules.pair_dataset import PairDataset
from corrlab.datamodules.random_homography import HomographySampler
from corrlab.geometry.homography import warp_points

TRAIN_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "cell.png",
    "coffee.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "page.png",
    "retina.jpg",
    "text.png",
)
VAL_PHOTOS = ("camera.png", "coins.png")
TEST_PHOTOS = ("chelsea.png", "rocket.jpg")


def skimage_photo_dir() -> Path:
    """The folder of sample photos inside the installed scikit-image package."""
    return Path(str(resources.files("skimage") / "data"))


def photometric_jitter(
    image: np.ndarray, rng: np.random.Generator, brightness: float, contrast: float, noise: float
) -> np.ndarray:
    """Random brightness shift, contrast gain and Gaussian noise on a float image in [0, 1]."""
    gain = rng.uniform(1 - contrast, 1 + contrast)
    shift = rng.uniform(-brightness, brightness)
    mean = image.mean()
    out = (image - mean) * gain + mean + shift
    if noise > 0:
        out = out + rng.normal(0.0, noise, size=out.shape)
    return np.clip(out, 0.0, 1.0)


def homography_flow(H_0to1: Tensor, size0: tuple[int, int], size1: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Dense ground truth of a homography on the image-0 grid: flow (H0, W0, 2) = H p - p for every pixel p
    (centres at integers) and valid (H0, W0) where H p lies in image 1, [0, W1 - 1] x [0, H1 - 1]
    (DenseMatching's correspondence mask)."""
    (h0, w0), (h1, w1) = size0, size1
    ys, xs = torch.meshgrid(torch.arange(h0, dtype=torch.float64), torch.arange(w0, dtype=torch.float64), indexing="ij")
    grid = torch.stack([xs, ys], dim=-1)
    mapped = warp_points(H_0to1.double(), grid.reshape(-1, 2)).reshape(h0, w0, 2)
    valid = (mapped[..., 0] >= 0) & (mapped[..., 0] <= w1 - 1) & (mapped[..., 1] >= 0) & (mapped[..., 1] <= h1 - 1)
    valid &= torch.isfinite(mapped).all(-1)
    return (mapped - grid).float(), valid


class SyntheticHomographyPairs(PairDataset):
    """Pairs (view0, view1 = H(view0)) cut from photos, with the exact H_0to1.

    view0 is a random crop of the photo, shrunk (area interpolation) so that the crop covers
    `zoom` x the view; view1 samples the same photo through H_0to1, so both views show real pixels
    where the photo exists (black outside it).  With `deterministic`, pair i is fixed by (seed, i);
    otherwise by (seed, epoch, i): new pairs every epoch, reproducible across resume and DDP ranks.
    With `flow`, pairs also carry the dense ground truth `flow` / `flow_valid` of H_0to1 (homography_flow).
    """

    def __init__(
        self,
        photos: Sequence[str],
        num_pairs: int,
        image_size: Sequence[int],
        homography: HomographySampler,
        photometric: dict[str, float],
        zoom: Sequence[float],
        deterministic: bool,
        seed: int,
        split: str,
        flow: bool = True,
    ) -> None:
        photo_dir = skimage_photo_dir()
        self.photo_names = list(photos)
        self.photos = [read_image_array(photo_dir / name).astype(np.float32) / 255.0 for name in self.photo_names]
        self.num_pairs = num_pairs
        self.height, self.width = int(image_size[0]), int(image_size[1])
        self.homography = homography
        self.photometric = dict(photometric)
        self.zoom = tuple(zoom)
        self.deterministic = deterministic
        self.seed = seed
        self.split = split
        self.flow = flow

    def __len__(self) -> int:
        return self.num_pairs

    def pair_names(self) -> list[str]:
        return [self._name(i) for i in range(self.num_pairs)]

    def _name(self, index: int) -> str:
        photo = Path(self.photo_names[index % len(self.photos)]).stem
        return f"{self.split}/{photo}/{index:05d}"

    def _view_id(self, index: int, view: int) -> str:
        """Both views are made for this pair only: '<pair name>/view<k>', plus the epoch when pairs change
        every epoch (training)."""
        epoch = "" if self.deterministic else f"/epoch{self.epoch}"
        return f"{self._name(index)}{epoch}/view{view}"

    def _rng(self, index: int) -> np.random.Generator:
        if self.deterministic:
            return np.random.default_rng([self.seed, index])
        return np.random.default_rng([self.seed, self.epoch, index])

    def sample_zoom(self, rng: np.random.Generator) -> float:
        """How many views fit across the photo's relatively shorter side (uniform in `zoom`)."""
        return rng.uniform(*self.zoom)

    def __getitem__(self, index: int) -> dict:
        rng = self._rng(index)
        photo = self.photos[index % len(self.photos)]
        h, w = self.height, self.width
        zoom = self.sample_zoom(rng)
        factor = max(h * zoom / photo.shape[0], w * zoom / photo.shape[1])
        small = cv2.resize(
            photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        )
        x0 = rng.uniform(0, max(small.shape[1] - w, 0))
        y0 = rng.uniform(0, max(small.shape[0] - h, 0))
        crop = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
        H = self.homography.sample(rng, h, w)
        view0 = cv2.warpPerspective(small, crop, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        view1 = cv2.warpPerspective(small, H @ crop, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        view0 = photometric_jitter(view0, rng, **self.photometric)
        view1 = photometric_jitter(view1, rng, **self.photometric)
        size = torch.tensor([h, w])
        dense = {}
        if self.flow:
            flow, valid = homography_flow(torch.from_numpy(H), (h, w), (h, w))
            dense = {"flow": flow, "flow_valid": valid}
        return {
            **dense,
            "image0": to_tensor((view0 * 255).round().astype(np.uint8)),
            "image1": to_tensor((view1 * 255).round().astype(np.uint8)),
            "H_0to1": torch.from_numpy(H).float(),
            "name": self._name(index),
            "image0_id": self._view_id(index, 0),
            "image1_id": self._view_id(index, 1),
            "size0": size,
            "size1": size.clone(),
            "scale0": torch.ones(2),
            "scale1": torch.ones(2),
        }


class SyntheticDataModule(PairDataModule):
    """`data=synthetic`: train / val / test pairs from disjoint sets of photos; val and test fixed by the seed."""

    name = "synthetic"
    default_benchmark = "synthetic_homography"

    def __init__(
        self,
        image_size: Sequence[int] = (256, 256),
        num_train_pairs: int = 2000,
        num_val_pairs: int = 32,
        num_test_pairs: int = 64,
        train_photos: Sequence[str] = TRAIN_PHOTOS,
        val_photos: Sequence[str] = VAL_PHOTOS,
        test_photos: Sequence[str] = TEST_PHOTOS,
        homography: dict | None = None,
        photometric: dict | None = None,
        zoom: Sequence[float] = (1.0, 1.5),
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        overlap = (
            (set(train_photos) & set(val_photos))
            | (set(train_photos) & set(test_photos))
            | (set(val_photos) & set(test_photos))
        )
        if overlap:
            raise ValueError(f"synthetic splits must use disjoint photos; shared: {sorted(overlap)}")
        self.image_size = tuple(image_size)
        self.num_pairs = {"train": num_train_pairs, "val": num_val_pairs, "test": num_test_pairs}
        self.photos = {"train": list(train_photos), "val": list(val_photos), "test": list(test_photos)}
        self.homography = HomographySampler(
            **{k: (tuple(v) if isinstance(v, list) else v) for k, v in (homography or {}).items()}
        )
        self.photometric = {"brightness": 0.1, "contrast": 0.1, "noise": 0.01, **(photometric or {})}
        self.zoom = tuple(zoom)

    def pair_arguments(self, split: str) -> dict:
        """The arguments of a split's SyntheticHomographyPairs (subclasses add their own)."""
        return {
            "photos": self.photos[split],
            "num_pairs": self.num_pairs[split],
            "image_size": self.image_size,
            "homography": self.homography,
            "photometric": self.photometric,
            "zoom": self.zoom,
            "deterministic": split != "train",
            "seed": self.seed + {"train": 0, "val": 1, "test": 2}[split],
            "split": split,
        }

    def make_dataset(self, split: str) -> SyntheticHomographyPairs:
        return SyntheticHomographyPairs(**self.pair_arguments(split))

    def benchmark_data(self, split: str) -> BenchmarkData:
        return BenchmarkData(
            dataset="synthetic",
            split=split,
            pair_names=self.pair_names(split),
            ground_truth=("H_0to1", "flow", "flow_valid"),
            resize={"mode": "none"},
            extra_spec={
                "image_size": list(self.image_size),
                "photos": self.photos[split],
                "homography_sampler": self.homography.describe(),
                "photometric": self.photometric,
                "zoom": list(self.zoom),
                "seed": self.seed,
            },
        )
