"""AP-10K semantic pairs, read like SPair from the pair folder `ap10k_pairs` wrote (lazily: the index holds
only the pair names of <split>.txt; each item reads one self-contained pair JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from corrlab.datamodules.annotation_io import read_json, require
from corrlab.datamodules.ap10k_pairs import HOW_TO_GET, LAYOUT, SETTINGS, SPLIT_DIRS
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.keypoint_datamodule import KeypointPairDataModule
from corrlab.datamodules.keypoint_groups import AP10K_FLIP_PAIRS, AP10K_GEO_GROUPS
from corrlab.datamodules.keypoint_pairs import KeypointPair, KeypointPairDataset, scatter_slots
from corrlab.datamodules.resize import ResizePolicy

NUM_KEYPOINTS = 17
PAIR_KEYS = (
    "src_kps",
    "trg_kps",
    "kps_ids",
    "src_bndbox",
    "trg_bndbox",
    "src_imsize",
    "trg_imsize",
    "src_visible_ids",
    "trg_visible_ids",
    "src_visible_kps",
    "trg_visible_kps",
    "category",
)
__all__ = ["HOW_TO_GET", "LAYOUT", "AP10KDataModule", "verify"]


def split_dir(split: str, setting: str) -> str:
    """The pair folder of a split: trn, or val/test with the setting's suffix."""
    return "trn" if split == "train" else f"{split}{SETTINGS[setting]}"


def stems(name: str) -> tuple[str, str, str]:
    """(source stem, target stem, category) from '<source>-<target>:<category>'."""
    pair, _, category = name.partition(":")
    source, _, target = pair.partition("-")
    if not (source and target and category):
        raise ValueError(f"'{name}' is not an AP-10K pair name '<source>-<target>:<category>'")
    return source, target, category


def read_names(path: Path) -> list[str]:
    if not path.is_file():
        raise UnreadableFileError(
            path, "no such pair list (write the pairs with python -m corrlab.datamodules.ap10k_pairs)"
        )
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    for number, name in enumerate(names, 1):
        try:
            stems(name)
        except ValueError as error:
            raise UnreadableFileError(path, f"line {number}: {error}") from error
    return names


def visible_mask(ids: list[int], path: Path) -> np.ndarray:
    mask = np.zeros(NUM_KEYPOINTS, dtype=bool)
    if any(not 0 <= int(i) < NUM_KEYPOINTS for i in ids):
        raise UnreadableFileError(path, f"visible ids {ids} outside 0..{NUM_KEYPOINTS - 1}")
    mask[[int(i) for i in ids]] = True
    return mask


class AP10KPairs(KeypointPairDataset):
    """The pairs of one split folder; images are <root>/data/<stem>.jpg."""

    def __init__(
        self, root: Path, folder: Path, names: list[str], resize: ResizePolicy, flip_probability: float
    ) -> None:
        super().__init__(names, resize, NUM_KEYPOINTS, flip_probability, flip_pairs=lambda c: AP10K_FLIP_PAIRS)
        self.root = root
        self.folder = folder

    def load(self, index: int) -> KeypointPair:
        name = self.names[index]
        source, target, category = stems(name)
        path = self.folder / f"{name}.json"
        record = read_json(path)
        if isinstance(record, dict) and "src_visible_kps" not in record:
            raise UnreadableFileError(
                path,
                "no 'src_visible_kps' (written by an older corrlab): rewrite the pairs with "
                "python -m corrlab.datamodules.ap10k_pairs --overwrite",
            )
        require(record, PAIR_KEYS, path)
        ids = [int(i) for i in record["kps_ids"]]
        kpts0 = scatter_slots(ids, record["src_kps"], NUM_KEYPOINTS, path)
        kpts1 = scatter_slots(ids, record["trg_kps"], NUM_KEYPOINTS, path)
        valid = np.zeros(NUM_KEYPOINTS, dtype=bool)
        valid[ids] = True
        return KeypointPair(
            name=name,
            image0=self.root / "data" / f"{source}.jpg",
            image1=self.root / "data" / f"{target}.jpg",
            kpts0=kpts0,
            kpts1=kpts1,
            valid=valid,
            visible0=visible_mask(record["src_visible_ids"], path),
            visible1=visible_mask(record["trg_visible_ids"], path),
            image_kpts0=scatter_slots(record["src_visible_ids"], record["src_visible_kps"], NUM_KEYPOINTS, path),
            image_kpts1=scatter_slots(record["trg_visible_ids"], record["trg_visible_kps"], NUM_KEYPOINTS, path),
            bbox0=np.asarray(record["src_bndbox"], dtype=np.float64),
            bbox1=np.asarray(record["trg_bndbox"], dtype=np.float64),
            category=category,
            image_size0=(int(record["src_imsize"][1]), int(record["src_imsize"][0])),
            image_size1=(int(record["trg_imsize"][1]), int(record["trg_imsize"][0])),
        )


def verify(
    root: str | Path, pairs: str | Path | None = None, splits: Sequence[str] = ("train", "val", "test")
) -> list[str]:
    """Problems of an AP-10K folder for the given splits (empty when complete): the original annotations and
    images, and the pair folder (`pairs`, default <root>/PairAnnotation) with every list, pair JSON and image
    it names, each pair JSON parsed as loading does."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root} does not exist"]
    problems = [
        f"missing {root / 'annotations' / f.format(1)}"
        for f in ("ap10k-train-split{}.json", "ap10k-val-split{}.json", "ap10k-test-split{}.json")
        if not (root / "annotations" / f.format(1)).is_file()
    ]
    if not (root / "data").is_dir():
        problems.append(f"missing folder {root / 'data'}")
    pairs = Path(pairs) if pairs else root / "PairAnnotation"
    folders = {split_dir(split, setting) for split in splits for setting in SETTINGS}
    for folder in sorted(folders, key=SPLIT_DIRS.index):
        try:
            names = read_names(pairs / f"{folder}.txt")
        except UnreadableFileError as error:
            problems.append(str(error))
            continue
        absent = [n for n in names if not (pairs / folder / f"{n}.json").is_file()]
        if absent:
            problems.append(
                f"{len(absent)} pair JSON(s) of {folder}.txt missing under {pairs / folder}, e.g. {absent[0]}.json"
            )
        images = {s for n in names for s in stems(n)[:2]}
        lost = sorted(s for s in images if not (root / "data" / f"{s}.jpg").is_file())
        if lost:
            problems.append(f"{len(lost)} image(s) of {folder}.txt missing under {root / 'data'}, e.g. {lost[0]}.jpg")
        present = [n for n in names if (pairs / folder / f"{n}.json").is_file()]
        problems += AP10KPairs(root, pairs / folder, present, ResizePolicy(), 0.0).load_problems(f"{folder}.txt")
    return problems


class AP10KDataModule(KeypointPairDataModule):
    """`data=ap10k`: AP-10K pairs in one of GeoAware-SC's test settings (intra-species | cross-species |
    cross-family) for val/test; training uses the intra-species `trn` pairs.  pairs: the folder ap10k_pairs
    wrote (default <root>/PairAnnotation)."""

    name = "ap10k"

    def __init__(self, root: str, setting: str = "intra-species", pairs: str | None = None, **kwargs) -> None:
        super().__init__(root, **kwargs)
        if setting not in SETTINGS:
            raise ValueError(f"data.setting must be one of {list(SETTINGS)}, got '{setting}'")
        self.setting = setting
        self.pairs = Path(pairs) if pairs else self.root / "PairAnnotation"

    def make_dataset(self, split: str) -> AP10KPairs:
        if not (self.root / "data").is_dir():
            raise DatasetNotFoundError("AP-10K", self.root, LAYOUT, HOW_TO_GET)
        if not self.pairs.is_dir():
            raise DatasetNotFoundError(
                "AP-10K",
                self.root,
                LAYOUT,
                HOW_TO_GET,
                problem=f"has no pair folder {self.pairs} (write it once: python -m corrlab.datamodules.ap10k_pairs --root {self.root})",
            )
        folder = split_dir(split, self.setting)
        names = read_names(self.pairs / f"{folder}.txt")
        images = [(self.root / "data" / f"{stems(n)[0]}.jpg", self.root / "data" / f"{stems(n)[1]}.jpg") for n in names]
        names = [names[i] for i in self.keep_available(split, names, images)]
        flip = self.flip_probability if split == "train" else 0.0
        return AP10KPairs(self.root, self.pairs / folder, names, self.resize_for(split), flip)

    def categories(self, split: str) -> list[str]:
        return sorted({stems(n)[2] for n in self.dataset(split).pair_names()})

    def geo_groups(self, split: str) -> dict:
        return {c: AP10K_GEO_GROUPS for c in self.categories(split)}

    def protocol_extra(self, split: str) -> dict:
        manifest = self.pairs / "manifest.json"
        return {
            "setting": self.setting if split != "train" else "intra-species",
            "pair_folder": str(self.pairs / split_dir(split, self.setting)),
            "pair_recipe": read_json(manifest) if manifest.is_file() else None,
        }
