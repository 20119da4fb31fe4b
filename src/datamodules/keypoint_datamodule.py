"""Shared datamodule of the semantic keypoint datasets: resize policies, flip augmentation, missing-image
handling, and what the PCK benchmark needs to know (categories, difficulty flags, geo-aware groups); the protocol's
parameters (convention, threshold, alphas) are the benchmark's (conf/benchmark/semantic_pck.yaml)."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

from corrlab.benchmarks.base import BenchmarkData
from corrlab.datamodules.base import PairDataModule
from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.keypoint_groups import Group
from corrlab.datamodules.keypoint_pairs import KeypointPairDataset, missing_images
from corrlab.datamodules.resize import ResizePolicy, evaluation_resize

log = logging.getLogger(__name__)
NO_RESIZE = {"mode": "none", "size": None, "divisible_by": 1}  # the data configs' default: original size
MAX_NAMED = 10  # missing files listed by name in messages (the count is always given)
# options that moved from the data config to the benchmark (conf/benchmark/semantic_pck.yaml)
MOVED_TO_BENCHMARK = ("convention", "threshold", "alphas")


def refuse_moved_options(options: Mapping[str, object]) -> None:
    """A clear error for data.convention / data.threshold / data.alphas, which the benchmark owns now."""
    moved = [key for key in MOVED_TO_BENCHMARK if key in options]
    if moved:
        raise TypeError(
            f"data.{moved[0]} moved to the benchmark: write "
            + ", ".join(f"benchmark.{key}={options[key]}" for key in moved)
            + " (the semantic protocol's convention, threshold and alphas are set on benchmark=semantic_pck)"
        )


class KeypointPairDataModule(PairDataModule):
    """Base of `data=spair|pfpascal|ap10k`.

    resize applies to val/test (default: original size, batch size 1); train_resize to training batches
    (a fixed size, so they stack).  skip_missing: pairs whose image files are absent are dropped when the
    index is built, named in the log and counted in the protocol spec (`skipped`); otherwise the first
    missing files are named in an error.
    """

    default_benchmark = "semantic_pck"
    flags: Mapping[str, Sequence[int]] = {}

    def __init__(
        self,
        root: str,
        resize: dict | None = None,
        train_resize: dict | None = None,
        flip_probability: float = 0.0,
        skip_missing: bool = False,
        method_resize: dict | None = None,
        **loader_kwargs,
    ) -> None:
        refuse_moved_options(loader_kwargs)
        super().__init__(**loader_kwargs)
        self.root = Path(root)
        self.resize = evaluation_resize(resize, NO_RESIZE, method_resize)
        self.train_resize = ResizePolicy(**(train_resize or {}))
        self.flip_probability = flip_probability
        self.skip_missing = skip_missing
        self.skipped: dict[str, list[str]] = {}

    @abstractmethod
    def geo_groups(self, split: str) -> Mapping[str, Sequence[Group]] | None:
        """Geometry-aware keypoint groups per category (None: the dataset has none)."""

    @abstractmethod
    def categories(self, split: str) -> list[str]:
        """The categories of a split's pairs (from the index, without parsing annotations)."""

    def resize_for(self, split: str) -> ResizePolicy:
        return self.train_resize if split == "train" else self.resize

    def keep_available(self, split: str, names: list[str], images: list[tuple[Path, Path]]) -> list[int]:
        """Indices of the pairs whose two images exist; missing ones raise or are skipped (see class doc)."""
        missing = set(missing_images(images))
        if not missing:
            return list(range(len(names)))
        listed = ", ".join(str(p) for p in sorted(missing)[:MAX_NAMED])
        if not self.skip_missing:
            raise UnreadableFileError(
                sorted(missing)[0],
                f"{len(missing)} image(s) of the {self.name} '{split}' index are missing: {listed}"
                f"{' ...' if len(missing) > MAX_NAMED else ''} (set data.skip_missing=true to evaluate without their pairs)",
            )
        keep = [i for i, (a, b) in enumerate(images) if a not in missing and b not in missing]
        self.skipped[split] = [name for (a, b), name in zip(images, names) if a in missing or b in missing]
        log.warning(
            "%s/%s: %d image(s) missing (%s), skipping %d of %d pairs",
            self.name,
            split,
            len(missing),
            listed,
            len(self.skipped[split]),
            len(names),
        )
        return keep

    def protocol_extra(self, split: str) -> dict:
        """Dataset-specific protocol facts recorded in the spec."""
        return {}

    def benchmark_data(self, split: str) -> BenchmarkData:
        dataset: KeypointPairDataset = self.dataset(split)
        skipped = self.skipped.get(split, [])
        return BenchmarkData(
            dataset=self.name,
            split=split,
            pair_names=dataset.pair_names(),
            ground_truth=("kpts0", "kpts1", "kpts_valid", "category", "bbox0", "bbox1"),
            resize=self.resize_for(split).describe(),
            facts={
                "categories": self.categories(split),
                "flags": self.flags,
                "geo_groups": self.geo_groups(split),
            },
            extra_spec={
                "root": str(self.root),
                "skipped": {"count": len(skipped), "names": skipped[:MAX_NAMED]},
                **self.protocol_extra(split),
            },
        )
