"""`data=eth3d`: the GLU-Net / DenseMatching ETH3D multi-view benchmark (10 scenes x 7 frame rates)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.datamodules.base import PairDataModule
from corrlab.datamodules.catalog import get as catalog_entry
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.eth3d_index import (
    INFO_DIR,
    RATES,
    SCENES,
    load_pairs_file,
    pairs_file,
    target_grid_correspondences,
)
from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.pair_dataset import PairDataset, image_id
from corrlab.datamodules.resize import ResizePolicy, evaluation_resize
from corrlab.geometry.scaling import to_resized

log = logging.getLogger(__name__)
MAX_NAMED = 5


class ETH3DPairs(PairDataset):
    """Every entry of the selected pair files, rate by rate then scene by scene.

    Direction (DenseMatching's): image0 is the *target* image, image1 the *source*; `kpts0` are the
    rounded target pixels and `kpts1` their source positions, so a method transfers image-0 queries
    into image 1 exactly as DenseMatching reads its target-to-source flow.  Only the index (paths and
    entry numbers) stays in memory; a pair's points are read from its pair file when it is loaded
    (one file cached per worker).
    """

    def __init__(
        self,
        root: str | Path,
        scenes: Sequence[str],
        rates: Sequence[int],
        resize: ResizePolicy,
        on_missing: str = "error",
    ) -> None:
        if on_missing not in ("error", "skip"):
            raise ValueError(f"data.on_missing must be error or skip, got '{on_missing}'")
        self.root = Path(root)
        entry = catalog_entry("eth3d")
        if not self.root.is_dir():
            raise DatasetNotFoundError("ETH3D", self.root, entry.layout, entry.how_to_get)
        if not (self.root / INFO_DIR).is_dir():
            raise DatasetNotFoundError(
                "ETH3D", self.root, entry.layout, entry.how_to_get, problem=f"has no {INFO_DIR}/ pair files"
            )
        self.resize = resize
        self.items: list[tuple[str, int, int, str, str]] = []  # (scene, rate, entry number, source, target)
        self.skipped: list[str] = []
        for rate in rates:
            for scene in scenes:
                path = pairs_file(self.root, scene, rate)
                if not path.is_file() and on_missing == "skip":
                    self.skipped.append(f"rate{rate}/{scene} (no {path.name})")
                    continue
                for number, item in enumerate(load_pairs_file(path)):
                    self.items.append((scene, rate, number, str(item["source_image"]), str(item["target_image"])))
        self._check_images(on_missing)
        self._cached: tuple[Path | None, list] = (None, [])

    def _check_images(self, on_missing: str) -> None:
        exists: dict[str, bool] = {}
        for item in self.items:
            for image in item[3:]:
                if image not in exists:
                    exists[image] = (self.root / image).is_file()
        bad = [i for i, item in enumerate(self.items) if not (exists[item[3]] and exists[item[4]])]
        if not bad:
            return
        first = next(image for image in self.items[bad[0]][3:] if not exists[image])
        message = f"{len(bad)} of {len(self.items)} ETH3D pairs reference missing images (first: {first})"
        if on_missing == "error":
            raise UnreadableFileError(
                self.root / first, f"{message}; set data.on_missing=skip to leave those pairs out"
            )
        names = [self.name(i) for i in bad]
        log.warning(
            "%s; skipped: %s%s", message, ", ".join(names[:MAX_NAMED]), " ..." if len(names) > MAX_NAMED else ""
        )
        self.skipped += names
        dropped = set(bad)
        self.items = [item for i, item in enumerate(self.items) if i not in dropped]

    def __len__(self) -> int:
        return len(self.items)

    def name(self, i: int) -> str:
        scene, rate, _, source, target = self.items[i]
        return f"rate{rate}/{scene}/{PurePosixPath(source).stem}-{PurePosixPath(target).stem}"

    def pair_names(self) -> list[str]:
        return [self.name(i) for i in range(len(self))]

    def _entry(self, scene: str, rate: int, number: int) -> dict:
        path = pairs_file(self.root, scene, rate)
        if self._cached[0] != path:
            self._cached = (path, load_pairs_file(path))
        return self._cached[1][number]

    def __getitem__(self, i: int) -> dict:
        scene, rate, number, source, target = self.items[i]
        image0 = read_image(self.root / target)
        image1 = read_image(self.root / source)
        kpts0, kpts1 = (
            torch.from_numpy(p)
            for p in target_grid_correspondences(self._entry(scene, rate, number), image0.shape[-2:])
        )
        size0, size1 = torch.tensor(image0.shape[-2:]), torch.tensor(image1.shape[-2:])
        image0, scale0 = self.resize(image0)
        image1, scale1 = self.resize(image1)
        return {
            "image0": image0,
            "image1": image1,
            "name": self.name(i),
            "image0_id": image_id(target),
            "image1_id": image_id(source),
            "size0": size0,
            "size1": size1,
            "scale0": scale0,
            "scale1": scale1,
            "kpts0": to_resized(kpts0, scale0.double()).float(),
            "kpts1": to_resized(kpts1, scale1.double()).float(),
            "kpts_valid": torch.ones(len(kpts0), dtype=torch.bool),
        }


class ETH3DDataModule(PairDataModule):
    """An evaluation benchmark (val and test are the same pairs; no train split).

    scenes: null = all 10; rates: a subset of 3, 5, ..., 15.  resize: none by default (DenseMatching
    evaluates at the native 752 x 480 resolution; a method resizes internally).
    """

    name = "eth3d"
    default_benchmark = "eth3d"

    def __init__(
        self,
        root: str,
        scenes: Sequence[str] | None = None,
        rates: Sequence[int] = RATES,
        resize: dict | None = None,
        method_resize: dict | None = None,
        on_missing: str = "error",
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        self.root = root
        self.scenes = list(SCENES if scenes is None else scenes)
        unknown = [s for s in self.scenes if s not in SCENES]
        if unknown:
            raise ValueError(f"unknown ETH3D scenes {unknown}; the 10 scenes are {', '.join(SCENES)}")
        self.rates = [int(r) for r in rates]
        if not set(self.rates) <= set(RATES):
            raise ValueError(f"data.rates must be among {list(RATES)}, got {self.rates}")
        self.resize = evaluation_resize(resize, None, method_resize)
        self.on_missing = on_missing

    def make_dataset(self, split: str) -> ETH3DPairs:
        if split == "train":
            raise ValueError("ETH3D is an evaluation benchmark: it has no training split")
        return ETH3DPairs(self.root, self.scenes, self.rates, self.resize, self.on_missing)

    def benchmark_data(self, split: str) -> BenchmarkData:
        dataset = self.dataset(split)
        return BenchmarkData(
            dataset="eth3d",
            split=split,
            pair_names=dataset.pair_names(),
            ground_truth=("kpts0", "kpts1", "kpts_valid"),
            resize=self.resize.describe(),
            facts={"scenes": self.scenes, "rates": self.rates},
            extra_spec={"skipped": {"count": len(dataset.skipped), "names": dataset.skipped[:20]}},
        )
