"""PUMP's training mix: homography pairs (pixel AP loss) and aligned real pairs (DeepMatching loss,
H_0to1 = NaN) in one epoch, as the reference's BalancedCatImagePairs; validation and test are the
synthetic homography benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from corrlab.benchmarks.base import BenchmarkData
from corrlab.datamodules.aligned_pairs import AlignedRealPairs, read_pair_list
from corrlab.datamodules.base import PairDataModule
from corrlab.datamodules.image_io import read_image_array
from corrlab.datamodules.synthetic import SyntheticDataModule, SyntheticHomographyPairs


class LazyPhotos(Sequence):
    """Float RGB images in [0, 1] read from files on access (for large image sets)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_image_array(self.paths[index]).astype(np.float32) / 255.0


class HomographyPairsFromFiles(SyntheticHomographyPairs):
    """Random homography pairs (as data=synthetic) cut from image files read on demand."""

    def __init__(self, paths: Sequence[Path], num_pairs: int, template: SyntheticHomographyPairs) -> None:
        super().__init__(
            [],
            num_pairs,
            (template.height, template.width),
            template.homography,
            template.photometric,
            template.zoom,
            False,
            template.seed,
            "train",
            flow=False,
        )
        self.photo_names = [str(p) for p in paths]
        self.photos = LazyPhotos(paths)


class ConcatPairs(ConcatDataset):
    """ConcatDataset with the pair names of its parts."""

    def pair_names(self) -> list[str]:
        return [name for part in self.datasets for name in part.pair_names()]


class PumpMixDataModule(PairDataModule):
    """`data=pump_mix`: per epoch, `num_web` homography pairs from the synthetic datamodule's training
    photos, `num_real_homography` homography pairs from the real images of `root` and `num_real`
    crops of aligned real pairs (the reference: 3125 + 4875 + 8000, crops of 256).  `synthetic`
    configures the homography pairs and the validation / test benchmark (SyntheticDataModule's
    arguments); `real`: AlignedRealPairs options (crop, p_swap, p_flip, scale_jitter, noise)."""

    name = "pump_mix"
    default_benchmark = "synthetic_homography"

    def __init__(
        self,
        root: str,
        num_web: int = 3125,
        num_real_homography: int = 4875,
        num_real: int = 8000,
        synthetic: dict | None = None,
        real: dict | None = None,
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        self.root = Path(root)
        self.counts = {"web": num_web, "real_homography": num_real_homography, "real": num_real}
        self.synthetic = SyntheticDataModule(**(synthetic or {}), seed=self.seed)
        self.real_options = {"crop": self.synthetic.image_size[0], **(real or {})}

    def make_dataset(self, split: str) -> Dataset:
        if split != "train":
            return self.synthetic.make_dataset(split)
        web = self.synthetic.make_dataset("train")
        web.num_pairs = self.counts["web"]
        web.flow = False  # the aligned real pairs have no dense ground truth; the batches share one set of keys
        pairs = read_pair_list(self.root)
        images = sorted({self.root / "ims" / name for pair in pairs for name in pair})
        parts = [
            web,
            HomographyPairsFromFiles(images, self.counts["real_homography"], web),
            AlignedRealPairs(self.root, self.counts["real"], **self.real_options),
        ]
        return ConcatPairs([p for p in parts if len(p) > 0])

    def benchmark_data(self, split: str) -> BenchmarkData:
        return self.synthetic.benchmark_data(split)
