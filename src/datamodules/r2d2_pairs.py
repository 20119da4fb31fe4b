"""R2D2-style training pairs (naver/r2d2 tools/dataloader.py with GCM's dstltrain.py options) built on the synthetic
homography pairs: the photo rescaled so its shorter side is log-uniform in [256, 1024] (`RandomScale(256, 1024,
can_upscale=True)`), view 1 its homography, distorted by `PixelNoise(25)` then `ColorJitter(0.2, 0.2, 0.2, 0.1)`
(in a random order, as torchvision's), both cropped to 192 x 192 (`RandomCrop(192)`).  From the photos inside
scikit-image (default) or from every image of a folder (`root`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF

from corrlab.datamodules.pump_mix import LazyPhotos
from corrlab.datamodules.synthetic import SyntheticDataModule, SyntheticHomographyPairs

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")
NO_PHOTOMETRIC = {"brightness": 0.0, "contrast": 0.0, "noise": 0.0}  # R2D2 distorts view 1 only, as below


def images_under(root: Path) -> list[Path]:
    """Every image file below `root` (recursively, sorted), or an error naming the expected layout."""
    if not root.is_dir():
        raise FileNotFoundError(f"data.root: '{root}' is not a folder (expected a folder of images, any depth)")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"data.root: no images ({', '.join(IMAGE_SUFFIXES)}) under '{root}'")
    return paths


def color_jitter(image: torch.Tensor, rng: np.random.Generator, jitter: Sequence[float]) -> torch.Tensor:
    """R2D2's ColorJitter(brightness, contrast, saturation, hue) on a 3 x H x W image in [0, 1]: factors uniform in
    [max(0, 1 - v), 1 + v] (hue in [-v, v]), applied in a random order, result on the uint8 grid (R2D2 works on
    PIL images)."""
    brightness, contrast, saturation, hue = jitter
    steps = []
    if brightness > 0:
        factor = rng.uniform(max(0.0, 1 - brightness), 1 + brightness)
        steps.append(lambda x, f=factor: TF.adjust_brightness(x, f))
    if contrast > 0:
        factor = rng.uniform(max(0.0, 1 - contrast), 1 + contrast)
        steps.append(lambda x, f=factor: TF.adjust_contrast(x, f))
    if saturation > 0:
        factor = rng.uniform(max(0.0, 1 - saturation), 1 + saturation)
        steps.append(lambda x, f=factor: TF.adjust_saturation(x, f))
    if hue > 0:
        factor = rng.uniform(-hue, hue)
        steps.append(lambda x, f=factor: TF.adjust_hue(x, f))
    for k in rng.permutation(len(steps)):
        image = steps[k](image)
    return (image.clamp(0, 1) * 255).round() / 255


def pixel_noise(image: torch.Tensor, rng: np.random.Generator, amplitude: float) -> torch.Tensor:
    """R2D2's PixelNoise(amplitude): uint8 value + uniform [0.5 - a / 2, 0.5 + a / 2), truncated, clipped."""
    noise = torch.from_numpy(rng.uniform(0.5 - amplitude / 2, 0.5 + amplitude / 2, size=image.shape)).to(image)
    return ((image * 255 + noise).floor().clamp(0, 255)) / 255


class R2D2StylePairs(SyntheticHomographyPairs):
    """Synthetic homography pairs with R2D2's scale (`short_side`, log-uniform) and view-1 distortions
    (`pixel_noise` amplitude in uint8 levels, `color_jitter` = brightness, contrast, saturation, hue)."""

    def __init__(
        self,
        *args,
        short_side: Sequence[float],
        pixel_noise: float,
        color_jitter: Sequence[float],
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.short_side = (float(short_side[0]), float(short_side[1]))
        self.noise_amplitude = float(pixel_noise)
        self.jitter = tuple(float(v) for v in color_jitter)

    def sample_zoom(self, rng: np.random.Generator) -> float:
        """The photo's (relatively) shorter side becomes zoom x the crop: log-uniform in short_side / crop."""
        low, high = (side / min(self.height, self.width) for side in self.short_side)
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        key = [self.seed, index, 1] if self.deterministic else [self.seed, self.epoch, index, 1]
        rng = np.random.default_rng(key)
        image1 = item["image1"]
        if self.noise_amplitude > 0:
            image1 = pixel_noise(image1, rng, self.noise_amplitude)
        item["image1"] = color_jitter(image1, rng, self.jitter)
        return item


class R2D2PairsDataModule(SyntheticDataModule):
    """`data=gcm_distill`: R2D2-style pairs for the training split, from scikit-image's training photos or, with
    `root`, from every image below that folder (read when used); validation and test are the same kind of pairs
    from the held-out scikit-image photos (fixed by the seed), scored by the synthetic homography benchmark."""

    name = "r2d2_pairs"

    def __init__(
        self,
        root: str | None = None,
        short_side: Sequence[float] = (256, 1024),
        pixel_noise: float = 25.0,
        color_jitter: Sequence[float] = (0.2, 0.2, 0.2, 0.1),
        **kwargs,
    ) -> None:
        kwargs.setdefault("photometric", NO_PHOTOMETRIC)
        super().__init__(**kwargs)
        self.root = None if root in (None, "") else Path(root)
        self.r2d2 = {"short_side": tuple(short_side), "pixel_noise": pixel_noise, "color_jitter": tuple(color_jitter)}

    def make_dataset(self, split: str) -> R2D2StylePairs:
        from_files = split == "train" and self.root is not None
        arguments = {**self.pair_arguments(split), "photos": [] if from_files else self.photos[split]}
        pairs = R2D2StylePairs(**arguments, flow=split != "train", **self.r2d2)
        if from_files:
            paths = images_under(self.root)
            pairs.photo_names = [str(p) for p in paths]
            pairs.photos = LazyPhotos(paths)
        return pairs

    def benchmark_data(self, split: str):
        data = super().benchmark_data(split)
        data.extra_spec["r2d2_pairs"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.r2d2.items()}
        return data
