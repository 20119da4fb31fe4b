"""HPatches: pairs (1, k) of each sequence with the official H_1_k, in the release or GCM layout."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.datamodules.base import PairDataModule
from corrlab.datamodules.catalog import get as catalog_entry
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.hpatches_layout import (
    LARGE_SEQUENCES,
    Sequence,
    detect_layout,
    find_sequences,
    read_homography,
)
from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.pair_dataset import PairDataset, image_id
from corrlab.datamodules.resize import ResizePolicy, evaluation_resize
from corrlab.geometry.scaling import homography_to_resized

log = logging.getLogger(__name__)

RESOLUTIONS = {
    "original": None,  # errors in original pixels (D2-Net / image-matching-toolbox at full resolution)
    "short480": ResizePolicy("short", 480),  # errors in the short-side-480 frame (glue-factory, LightGlue)
}


class HPatchesPairs(PairDataset):
    """Every (1, k) pair with an H_1_k file, in sorted sequence order."""

    def __init__(self, root: str | Path, subset: str, exclude_large: bool, resize: ResizePolicy) -> None:
        self.root = Path(root)
        entry = catalog_entry("hpatches")
        if not self.root.is_dir():
            raise DatasetNotFoundError("HPatches", self.root, entry.layout, entry.how_to_get)
        sequences = find_sequences(self.root)
        if not sequences:
            raise DatasetNotFoundError(
                "HPatches", self.root, entry.layout, entry.how_to_get, problem="has no i_*/v_* sequence folders"
            )
        if exclude_large:
            sequences = [s for s in sequences if s.name not in LARGE_SEQUENCES]
        if subset != "all":
            sequences = [s for s in sequences if s.name.startswith(f"{subset}_")]
        self.layout = detect_layout(self.root)
        self.pairs: list[tuple[Sequence, int]] = []
        left_out = []
        for sequence in sequences:
            for k in range(2, 7):
                if sequence.homography_path(k).is_file():
                    self.pairs.append((sequence, k))
                else:
                    left_out.append({"pair": f"{sequence.name}/1-{k}", "reason": f"no H_1_{k} file"})  # in both layouts
        self.resize = resize
        self.incomplete = incompleteness(len(sequences), expected_sequences(subset, exclude_large), left_out)
        if self.incomplete:
            log.warning("HPatches at %s is incomplete: %s", self.root, describe_incompleteness(self.incomplete))

    def __len__(self) -> int:
        return len(self.pairs)

    def pair_names(self) -> list[str]:
        return [f"{sequence.name}/1-{k}" for sequence, k in self.pairs]

    def __getitem__(self, index: int) -> dict:
        sequence, k = self.pairs[index]
        path0, path1 = self._existing(sequence.image_path(1)), self._existing(sequence.image_path(k))
        image0, image1 = read_image(path0), read_image(path1)
        H = torch.from_numpy(read_homography(sequence.homography_path(k)))
        size0, size1 = torch.tensor(image0.shape[-2:]), torch.tensor(image1.shape[-2:])
        image0, scale0 = self.resize(image0)
        image1, scale1 = self.resize(image1)
        return {
            "image0": image0,
            "image1": image1,
            "H_0to1": homography_to_resized(H, scale0.double(), scale1.double()).float(),
            "name": f"{sequence.name}/1-{k}",
            "image0_id": image_id(path0, self.root),
            "image1_id": image_id(path1, self.root),
            "size0": size0,
            "size1": size1,
            "scale0": scale0,
            "scale1": scale1,
        }

    @staticmethod
    def _existing(path: Path) -> Path:
        if not path.is_file():
            raise UnreadableFileError(path, "no such image (tried .ppm, .png, .jpg)")
        return path


def expected_sequences(subset: str, exclude_large: bool) -> int:
    """Sequences of the full release in a subset: 57 i_ + 59 v_, of which 5 i_ and 3 v_ are large."""
    counts = {"i": 57, "v": 59}
    if exclude_large:
        counts = {p: n - sum(s.startswith(f"{p}_") for s in LARGE_SEQUENCES) for p, n in counts.items()}
    return sum(counts.values()) if subset == "all" else counts[subset]


def incompleteness(found: int, expected: int, left_out: list[dict]) -> dict:
    """What an evaluation on this root leaves out of the full protocol ({} when nothing)."""
    if found == expected and not left_out:
        return {}
    return {"sequences": {"found": found, "expected": expected}, "pairs_left_out": left_out}


def describe_incompleteness(incomplete: dict) -> str:
    sequences, left_out = incomplete["sequences"], incomplete["pairs_left_out"]
    text = f"{sequences['found']} of {sequences['expected']} sequences"
    if left_out:
        names = ", ".join(f"{p['pair']} ({p['reason']})" for p in left_out[:10])
        text += f"; {len(left_out)} pair(s) left out: {names}" + (" ..." if len(left_out) > 10 else "")
    return text + " (listed in summary.json under protocol.spec.incomplete; check with `corrlab-data verify hpatches`)"


class HPatchesDataModule(PairDataModule):
    """`data=hpatches`: an evaluation benchmark (val and test are the same pairs; no train split).

    subset: all | i | v.  exclude_large drops the 8 large sequences (108 sequences, 540 pairs remain).
    resolution: the frame errors are measured in, `original` or `short480`.  resize: what the model
    sees; null follows the resolution (none for original, short side 480 for short480).
    Benchmarks: hpatches_mma (default, D2-Net) or hpatches_ime (GCM / DFM).
    """

    name = "hpatches"
    default_benchmark = "hpatches_mma"

    def __init__(
        self,
        root: str,
        subset: str = "all",
        exclude_large: bool = True,
        resolution: str = "original",
        resize: dict | None = None,
        method_resize: dict | None = None,
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        if subset not in ("all", "i", "v"):
            raise ValueError(f"data.subset must be one of all, i, v; got '{subset}'")
        if resolution not in RESOLUTIONS:
            raise ValueError(f"data.resolution must be one of {', '.join(RESOLUTIONS)}; got '{resolution}'")
        self.root = root
        self.subset = subset
        self.exclude_large = exclude_large
        self.resolution = resolution
        if resize is None and RESOLUTIONS[resolution] is not None:
            self.resize = RESOLUTIONS[resolution]  # the protocol's frame (short480) is the model input
        else:
            self.resize = evaluation_resize(resize, None, method_resize)

    def make_dataset(self, split: str) -> HPatchesPairs:
        if split == "train":
            raise ValueError(
                "HPatches is an evaluation benchmark: it has no training split (train on data=synthetic or data=megadepth)"
            )
        return HPatchesPairs(self.root, self.subset, self.exclude_large, self.resize)

    def benchmark_data(self, split: str) -> BenchmarkData:
        subset_groups = self.subset == "all"
        dataset = self.dataset(split)
        return BenchmarkData(
            dataset="hpatches",
            split=self.subset,
            pair_names=self.pair_names(split),
            ground_truth=("H_0to1",),
            resize=self.resize.describe(),
            groups=("all", "i", "v") if subset_groups else ("all",),
            group_of=_sequence_type if subset_groups else None,
            facts={"error_frame": RESOLUTIONS[self.resolution]},
            extra_spec={
                "resolution": self.resolution,
                "exclude_large": self.exclude_large,
                "excluded": list(LARGE_SEQUENCES) if self.exclude_large else [],
                **({"incomplete": dataset.incomplete} if dataset.incomplete else {}),
            },
        )


def _sequence_type(name: str) -> str:
    """'i' or 'v' from a pair name 'i_xxx/1-k'."""
    return name[0]
