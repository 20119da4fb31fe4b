"""`data=megadepth`: training pairs from D2-Net scene_info (or a data_pairs list), MegaDepth-1500 for evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from corrlab.benchmarks.base import BenchmarkData
from corrlab.datamodules.base import PairDataModule
from corrlab.datamodules.catalog import get as catalog_entry
from corrlab.datamodules.errors import DatasetNotFoundError
from corrlab.datamodules.megadepth_dataset import MegaDepthPairs
from corrlab.datamodules.megadepth_index import (
    MEGADEPTH1500_SCENES,
    PATCH2PIX_TEST_SCENES,
    megadepth1500_files,
    megadepth1500_pairs,
    scene_info_pairs,
)
from corrlab.datamodules.posed_index import PosedPairIndex, concat, load_pair_list
from corrlab.datamodules.resize import ResizePolicy, evaluation_resize
from corrlab.datamodules.scene_sampler import ScenePairSampler

log = logging.getLogger(__name__)
MAX_SKIPPED_IN_SPEC = 20
DEFAULT_EVAL_RESIZE = {"mode": "long", "size": 1200, "divisible_by": 1}  # conf/data/megadepth.yaml eval_resize


class MegaDepthDataModule(PairDataModule):
    """MegaDepth posed pairs (batch keys K0, K1, T_0to1 and, with load_depth, depth0/depth1).

    train: `train_pairs` (a data_pairs .npz list) or, when null, every ordered pair of the
      scene_info files with overlap in [min_overlap, max_overlap), scale ratio <= max_scale_ratio and
      (optionally) both aspect ratios in aspect_range; `exclude_scenes` left out.  Each epoch draws
      `pairs_per_scene` pairs per scene (null: all), reproducibly from (seed, epoch).  Images are
      cropped top-left to `crop_aspect` (Patch2Pix's 3:2) and resized with `train_resize`.
    val: `val_pairs` (a data_pairs list), else a seeded subset of `val_max_pairs` MegaDepth-1500 pairs.
    test: MegaDepth-1500 (LoFTR's index), images resized with `eval_resize` (long side 1200).
    load_depth adds depth0/depth1 to training batches (the pose protocol needs none, and LoFTR's
    MegaDepth-1500 download has no depth maps).
    """

    name = "megadepth"
    default_benchmark = "megadepth1500"

    def __init__(
        self,
        root: str,
        train_pairs: str | None = None,
        scene_info_dir: str | None = None,
        scenes: Sequence[str] | None = None,
        exclude_scenes: Sequence[str] = PATCH2PIX_TEST_SCENES,
        min_overlap: float = 0.35,
        max_overlap: float = 1.0,
        max_scale_ratio: float = float("inf"),
        aspect_range: Sequence[float] | None = None,
        pairs_per_scene: int | None = 500,
        crop_aspect: float | None = None,
        train_resize: dict | None = None,
        val_pairs: str | None = None,
        val_max_pairs: int = 100,
        val_resize: dict | None = None,
        test_index: str | None = None,
        test_root: str | None = None,
        eval_resize: dict | None = None,
        method_resize: dict | None = None,
        load_depth: bool = False,
        on_missing: str = "error",
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        self.root = Path(root)
        self.train_pairs = train_pairs
        self.scene_info_dir = Path(scene_info_dir) if scene_info_dir else self.root / "scene_info"
        self.scenes = None if scenes is None else [str(s) for s in scenes]
        self.exclude_scenes = [str(s) for s in exclude_scenes]
        self.filters = dict(
            min_overlap=min_overlap,
            max_overlap=max_overlap,
            max_scale_ratio=max_scale_ratio,
            aspect_range=None if aspect_range is None else list(aspect_range),
        )
        self.pairs_per_scene = pairs_per_scene
        self.crop_aspect = crop_aspect
        self.train_resize = ResizePolicy(**(train_resize or {}))
        self.val_pairs = val_pairs
        self.val_max_pairs = val_max_pairs
        self.eval_resize = evaluation_resize(eval_resize, DEFAULT_EVAL_RESIZE, method_resize)
        self.val_resize = ResizePolicy(**val_resize) if val_resize else self.eval_resize
        self.test_index = Path(test_index) if test_index else self.root / "megadepth_test_1500_scene_info"
        self.test_root = Path(test_root) if test_root else self.root
        self.load_depth = load_depth
        self.on_missing = on_missing

    # --- indices ----------------------------------------------------------------------------
    def _not_found(self, path: Path, problem: str) -> DatasetNotFoundError:
        entry = catalog_entry("megadepth")
        return DatasetNotFoundError("MegaDepth", path, entry.layout, entry.how_to_get, problem=problem)

    def _keep_scenes(self, index: PosedPairIndex) -> PosedPairIndex:
        scenes = index.pair_scenes()
        keep = ~np.isin(scenes, self.exclude_scenes)
        if self.scenes is not None:
            keep &= np.isin(scenes, self.scenes)
        return index.subset(keep)

    def train_index(self) -> PosedPairIndex:
        """Every candidate training pair (before the per-epoch draw)."""
        if self.train_pairs:
            index, _ = load_pair_list(self.train_pairs)
            return self._keep_scenes(index)
        if not self.root.is_dir():
            raise self._not_found(self.root, "not found")
        if not self.scene_info_dir.is_dir():
            raise self._not_found(self.scene_info_dir, "has no scene_info folder (D2-Net scene info) here")
        files = sorted(self.scene_info_dir.glob("*.npz"))
        scenes = [f.name.split(".")[0] for f in files]
        chosen = [
            (f, s)
            for f, s in zip(files, scenes)
            if s not in self.exclude_scenes and (self.scenes is None or s in self.scenes)
        ]
        index = concat([scene_info_pairs(f, s, **self.filters) for f, s in chosen])
        log.info(
            "megadepth train: %d candidate pairs in %d scenes (scene_info %s)",
            len(index),
            len(chosen),
            self.scene_info_dir,
        )
        return index

    def megadepth1500_index(self) -> PosedPairIndex:
        if not self.test_index.is_dir() or not megadepth1500_files(self.test_index):
            raise self._not_found(
                self.test_index, "has no MegaDepth-1500 index (LoFTR's megadepth_test_1500_scene_info)"
            )
        return megadepth1500_pairs(self.test_index)

    def val_index(self) -> PosedPairIndex:
        if self.val_pairs:
            return load_pair_list(self.val_pairs)[0]
        index = self.megadepth1500_index()
        if len(index) <= self.val_max_pairs:
            return index
        chosen = np.sort(np.random.default_rng(self.seed).choice(len(index), self.val_max_pairs, replace=False))
        keep = np.zeros(len(index), bool)
        keep[chosen] = True
        return index.subset(keep)

    # --- datasets, loaders, protocol --------------------------------------------------------
    def make_dataset(self, split: str) -> MegaDepthPairs:
        if split == "train":
            index = self.train_index()
            overlap = sorted(set(index.pair_scenes()) & set(MEGADEPTH1500_SCENES))
            if overlap:
                log.warning(
                    "megadepth train includes the MegaDepth-1500 test scenes %s (as Patch2Pix's recipe does); "
                    "add them to data.exclude_scenes to keep them out",
                    overlap,
                )
            return MegaDepthPairs(
                self.root,
                index,
                self.train_resize,
                self.crop_aspect,
                load_depth=self.load_depth,
                on_missing=self.on_missing,
                substitute_unreadable=True,
            )
        if split == "val":
            root = self.root if self.val_pairs else self.test_root
            return MegaDepthPairs(root, self.val_index(), self.val_resize, on_missing=self.on_missing)
        return MegaDepthPairs(self.test_root, self.megadepth1500_index(), self.eval_resize, on_missing=self.on_missing)

    def train_sampler(self, dataset: MegaDepthPairs, rank: int, world_size: int) -> ScenePairSampler:
        """`pairs_per_scene` pairs of every scene per epoch, drawn from (seed, epoch)."""
        return ScenePairSampler(
            dataset, dataset.index.pair_scenes(), self.pairs_per_scene, self.seed, num_replicas=world_size, rank=rank
        )

    def benchmark_data(self, split: str) -> BenchmarkData:
        if split == "train":
            raise ValueError("the relative-pose protocol runs on the val and test splits")
        dataset = self.dataset(split)
        if split == "test":
            source = {
                "source": "MegaDepth-1500 (LoFTR megadepth_test_1500_scene_info)",
                "index_files": [f.name for f in megadepth1500_files(self.test_index)],
            }
        elif self.val_pairs:
            source = {"source": f"data_pairs list {Path(self.val_pairs).name}"}
        else:
            source = {"source": f"seeded subset (seed {self.seed}) of MegaDepth-1500", "max_pairs": self.val_max_pairs}
        return BenchmarkData(
            dataset="megadepth" if split == "val" and self.val_pairs else "megadepth1500",
            split=split,
            pair_names=dataset.pair_names(),
            ground_truth=("K0", "K1", "T_0to1"),
            resize=(self.eval_resize if split == "test" else self.val_resize).describe(),
            extra_spec={
                **source,
                "skipped_pairs": {"count": len(dataset.skipped), "names": dataset.skipped[:MAX_SKIPPED_IN_SPEC]},
            },
        )
