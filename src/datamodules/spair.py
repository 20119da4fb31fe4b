"""SPair-71k (the official release): pairs listed by Layout/<layout>/<split>.txt, one pair JSON each,
keypoint visibility from the image JSONs; read lazily (the index holds only the pair names)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from corrlab.datamodules.annotation_io import read_json, require
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.keypoint_datamodule import KeypointPairDataModule
from corrlab.datamodules.keypoint_groups import SPAIR_FLIP_PAIRS, SPAIR_GEO_GROUPS
from corrlab.datamodules.keypoint_pairs import KeypointPair, KeypointPairDataset, scatter_slots
from corrlab.datamodules.resize import ResizePolicy
from corrlab.datamodules.spair_layout import HOW_TO_GET, LAYOUT

SPLIT_DIRS = {"train": "trn", "val": "val", "test": "test"}
PAIR_KEYS = (
    "src_kps",
    "trg_kps",
    "kps_ids",
    "src_bndbox",
    "trg_bndbox",
    "src_imsize",
    "trg_imsize",
    "category",
    "viewpoint_variation",
    "scale_variation",
    "truncation",
    "occlusion",
    "mirror",
)
# SPair difficulty flags and their values (paper): variations 0 easy / 1 medium / 2 hard;
# truncation and occlusion 0 none / 1 source / 2 target / 3 both.
FLAGS = {
    "viewpoint_variation": (0, 1, 2),
    "scale_variation": (0, 1, 2),
    "truncation": (0, 1, 2, 3),
    "occlusion": (0, 1, 2, 3),
}


def image_names(pair_name: str) -> tuple[str, str, str]:
    """(source image, target image, category) from '<id>-<src>-<trg>:<category>'."""
    stem, _, category = pair_name.partition(":")
    parts = stem.split("-")
    if len(parts) != 3 or not category:
        raise ValueError(f"'{pair_name}' is not an SPair pair name '<id>-<source>-<target>:<category>'")
    return parts[1], parts[2], category


def read_layout(path: Path) -> list[str]:
    """Pair names of a Layout file (blank lines ignored; a malformed line names the file and line)."""
    if not path.is_file():
        raise UnreadableFileError(path, "no such layout file")
    names = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        try:
            image_names(name)
        except ValueError as error:
            raise UnreadableFileError(path, f"line {number}: {error}") from error
        names.append(name)
    return names


def image_keypoints(path: Path, num_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints an ImageAnnotation JSON gives: (num_slots, 2) coordinates (0 where null) and (num_slots,)
    which ids are visible (non-null)."""
    record = read_json(path)
    require(record, ["kps"], path)
    if not isinstance(record["kps"], dict):
        raise UnreadableFileError(path, f"'kps' is {type(record['kps']).__name__}, expected an object id -> [x, y]")
    shown = {key: point for key, point in record["kps"].items() if point is not None}
    for key in shown:
        if not key.isdigit():
            raise UnreadableFileError(path, f"keypoint id '{key}' is not a number")
    ids = [int(key) for key in shown]
    kpts = scatter_slots(ids, list(shown.values()), num_slots, path)
    visible = np.zeros(num_slots, dtype=bool)
    visible[ids] = True
    return kpts, visible


class SPairPairs(KeypointPairDataset):
    """The pairs of one split: only their names are kept; each item reads its pair JSON and two image JSONs."""

    def __init__(
        self,
        root: Path,
        split_dir: str,
        names: list[str],
        resize: ResizePolicy,
        num_slots: int,
        flip_probability: float,
    ) -> None:
        super().__init__(names, resize, num_slots, flip_probability, flip_pairs=lambda c: SPAIR_FLIP_PAIRS.get(c, ()))
        self.root = root
        self.split_dir = split_dir

    def load(self, index: int) -> KeypointPair:
        name = self.names[index]
        source, target, category = image_names(name)
        path = self.root / "PairAnnotation" / self.split_dir / f"{name}.json"
        record = read_json(path)
        require(record, PAIR_KEYS, path)
        if record["category"] != category:
            raise UnreadableFileError(
                path, f"category '{record['category']}' differs from the pair name's '{category}'"
            )
        ids = [int(i) for i in record["kps_ids"]]
        kpts0 = scatter_slots(ids, record["src_kps"], self.num_slots, path)
        kpts1 = scatter_slots(ids, record["trg_kps"], self.num_slots, path)
        valid = np.zeros(self.num_slots, dtype=bool)
        valid[ids] = True
        annotations = self.root / "ImageAnnotation" / category
        own0, visible0 = image_keypoints(annotations / f"{source}.json", self.num_slots)
        own1, visible1 = image_keypoints(annotations / f"{target}.json", self.num_slots)
        return KeypointPair(
            name=name,
            image0=self.root / "JPEGImages" / category / f"{source}.jpg",
            image1=self.root / "JPEGImages" / category / f"{target}.jpg",
            kpts0=kpts0,
            kpts1=kpts1,
            valid=valid,
            visible0=visible0,
            visible1=visible1,
            bbox0=np.asarray(record["src_bndbox"], dtype=np.float64),
            bbox1=np.asarray(record["trg_bndbox"], dtype=np.float64),
            category=category,
            image_size0=(int(record["src_imsize"][1]), int(record["src_imsize"][0])),
            image_size1=(int(record["trg_imsize"][1]), int(record["trg_imsize"][0])),
            flags={k: int(record[k]) for k in (*FLAGS, "mirror")},
            image_kpts0=own0,
            image_kpts1=own1,
        )


def verify(root: str | Path, splits: Sequence[str] = ("train", "val", "test")) -> list[str]:
    """Problems of an SPair-71k folder against the official layout for the given splits (empty when complete):
    missing folders, layout files, pair JSONs, image JSONs or images listed by the large layout, and the
    annotations that do not parse as loading parses them."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root} does not exist"]
    problems = [
        f"missing folder {root / d}"
        for d in ("JPEGImages", "ImageAnnotation", "PairAnnotation")
        if not (root / d).is_dir()
    ]
    for split in splits:
        split_dir = SPLIT_DIRS[split]
        layout = root / "Layout" / "large" / f"{split_dir}.txt"
        if not layout.is_file():
            problems.append(f"missing layout file {layout}")
            continue
        try:
            names = read_layout(layout)
        except UnreadableFileError as error:
            problems.append(str(error))
            continue
        absent = [n for n in names if not (root / "PairAnnotation" / split_dir / f"{n}.json").is_file()]
        if absent:
            problems.append(
                f"{len(absent)} pair JSON(s) of {layout.name} missing under {root / 'PairAnnotation' / split_dir}, e.g. {absent[0]}.json"
            )
        images = set()
        for name in names:
            source, target, category = image_names(name)
            images |= {(category, source), (category, target)}
        for folder, extension in (("JPEGImages", "jpg"), ("ImageAnnotation", "json")):
            lost = sorted(
                f"{c}/{s}.{extension}" for c, s in images if not (root / folder / c / f"{s}.{extension}").is_file()
            )
            if lost:
                problems.append(f"{len(lost)} file(s) of {layout.name} missing under {root / folder}, e.g. {lost[0]}")
        annotated = [n for n in names if all(p.is_file() for p in annotation_files(root, split_dir, n))]
        problems += SPairPairs(root, split_dir, annotated, ResizePolicy(), 30, 0.0).load_problems(layout.name)
    return problems


def annotation_files(root: Path, split_dir: str, name: str) -> list[Path]:
    """The pair JSON and the two image JSONs one pair reads."""
    source, target, category = image_names(name)
    return [root / "PairAnnotation" / split_dir / f"{name}.json"] + [
        root / "ImageAnnotation" / category / f"{stem}.json" for stem in (source, target)
    ]


class SPairDataModule(KeypointPairDataModule):
    """`data=spair`: SPair-71k with the GeoAware-SC protocol by default (see docs/semantic.md).

    layout: large (the benchmark lists) | small.  max_keypoints: keypoint slots per pair (SPair ids 0..29).
    """

    name = "spair"
    flags = FLAGS

    def __init__(self, root: str, layout: str = "large", max_keypoints: int = 30, **kwargs) -> None:
        super().__init__(root, **kwargs)
        if layout not in ("large", "small"):
            raise ValueError(f"data.layout must be 'large' or 'small', got '{layout}'")
        self.layout = layout
        self.max_keypoints = max_keypoints

    def names(self, split: str) -> list[str]:
        if not (self.root / "PairAnnotation").is_dir() or not (self.root / "Layout").is_dir():
            raise DatasetNotFoundError("SPair-71k", self.root, LAYOUT, HOW_TO_GET)
        return read_layout(self.root / "Layout" / self.layout / f"{SPLIT_DIRS[split]}.txt")

    def make_dataset(self, split: str) -> SPairPairs:
        names = self.names(split)
        images = []
        for name in names:
            source, target, category = image_names(name)
            images.append(
                (
                    self.root / "JPEGImages" / category / f"{source}.jpg",
                    self.root / "JPEGImages" / category / f"{target}.jpg",
                )
            )
        names = [names[i] for i in self.keep_available(split, names, images)]
        flip = self.flip_probability if split == "train" else 0.0
        return SPairPairs(self.root, SPLIT_DIRS[split], names, self.resize_for(split), self.max_keypoints, flip)

    def categories(self, split: str) -> list[str]:
        return sorted({image_names(n)[2] for n in self.dataset(split).pair_names()})

    def geo_groups(self, split: str) -> dict:
        return SPAIR_GEO_GROUPS

    def protocol_extra(self, split: str) -> dict:
        return {
            "layout": f"Layout/{self.layout}/{SPLIT_DIRS[split]}.txt",
            "difficulty_flags": {k: list(v) for k, v in FLAGS.items()},
        }
