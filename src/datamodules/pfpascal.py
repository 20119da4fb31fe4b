"""PF-Pascal through the weakalign/NCNet pair CSVs: keypoints as ';'-separated strings (val/test) or, for the
training CSV (source_image,target_image,class,flip), from the PF-dataset-PASCAL Annotations .mat files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from corrlab.datamodules.annotation_io import parse_coordinates, read_csv_rows
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.keypoint_datamodule import KeypointPairDataModule
from corrlab.datamodules.keypoint_pairs import KeypointPair, KeypointPairDataset
from corrlab.datamodules.pfpascal_layout import HOW_TO_GET, LAYOUT
from corrlab.datamodules.resize import ResizePolicy

CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)  # the CSV class column is 1-based in this order
MAX_KEYPOINTS = 20  # keypoint slots per pair (weakalign pads to 20)
PAIR_COLUMNS = ("source_image", "target_image", "class")
KEYPOINT_COLUMNS = ("XA", "YA", "XB", "YB")


def csv_candidates(root: Path, split: str) -> list[Path]:
    """Where a split's CSV may be, in the order they are tried."""
    return [
        root / f"{split}_pairs_pf_pascal.csv",
        root / "PF-dataset-PASCAL" / f"{split}_pairs_pf_pascal.csv",
        root / "image_pairs" / f"{split}_pairs.csv",
    ]


@dataclass(frozen=True)
class PascalRow:
    """One CSV row, kept as text until the pair is loaded."""

    path: Path
    line: int
    source: str
    target: str
    category: str
    coordinates: tuple[str, str, str, str] | None  # XA, YA, XB, YB; None: keypoints from the .mat files
    flip: bool


def read_rows(path: Path) -> list[PascalRow]:
    """Every row of a pair CSV (class ids and the flip flag checked; coordinates parsed later)."""
    try:
        with path.open() as handle:
            header = handle.readline()
    except UnicodeDecodeError as error:
        raise UnreadableFileError(path, f"not a text CSV file ({error.reason} at byte {error.start})") from error
    with_keypoints = all(c in header for c in KEYPOINT_COLUMNS)
    rows = []
    for line, row in read_csv_rows(path, PAIR_COLUMNS + (KEYPOINT_COLUMNS if with_keypoints else ())):
        try:
            category = CLASSES[int(float(row["class"])) - 1]
            flip = bool(int(float(row.get("flip") or 0)))
        except (ValueError, IndexError) as error:
            raise UnreadableFileError(
                path, f"line {line}: class must be 1..{len(CLASSES)} and flip 0/1 ({error})"
            ) from error
        coordinates = tuple(row[c] for c in KEYPOINT_COLUMNS) if with_keypoints else None
        rows.append(PascalRow(path, line, row["source_image"], row["target_image"], category, coordinates, flip))
    return rows


def mat_keypoints(path: Path) -> np.ndarray:
    """(N, 2) keypoints of a PF-Pascal annotation .mat (NaN rows = invisible)."""
    try:
        kps = scipy.io.loadmat(str(path))["kps"]
    except (OSError, ValueError, KeyError) as error:
        raise UnreadableFileError(path, f"not a PF-Pascal annotation with 'kps' ({error!r})") from error
    return np.asarray(kps, dtype=np.float64).reshape(-1, 2)


def pair_name(row: PascalRow) -> str:
    """'<source>-<target>:<class>', with '/mirrored' when the row's flip flag is set."""
    return f"{Path(row.source).stem}-{Path(row.target).stem}:{row.category}{'/mirrored' if row.flip else ''}"


class PFPascalPairs(KeypointPairDataset):
    """Pairs of one CSV; PF-Pascal has no box in its CSVs, so bbox0/bbox1 are the image frames (threshold=bbox
    then equals threshold=image).  Flips mirror both images together (slot i stays slot i)."""

    def __init__(
        self, root: Path, rows: list[PascalRow], resize: ResizePolicy, num_slots: int, flip_probability: float
    ) -> None:
        super().__init__([pair_name(r) for r in rows], resize, num_slots, flip_probability, flip_pairs=None)
        self.root = root
        self.rows = rows

    def keypoints(self, row: PascalRow) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) source and target keypoints; rows with a NaN in either image are dropped later."""
        if row.coordinates is not None:
            xa, ya, xb, yb = (
                parse_coordinates(t, row.path, row.line, c) for t, c in zip(row.coordinates, KEYPOINT_COLUMNS)
            )
            if not len(xa) == len(ya) == len(xb) == len(yb):
                raise UnreadableFileError(
                    row.path, f"line {row.line}: XA, YA, XB, YB have {len(xa)}, {len(ya)}, {len(xb)}, {len(yb)} values"
                )
            return np.stack([xa, ya], 1).reshape(-1, 2), np.stack([xb, yb], 1).reshape(-1, 2)
        annotations = self.root / "PF-dataset-PASCAL" / "Annotations" / row.category
        source = mat_keypoints(annotations / f"{Path(row.source).stem}.mat")
        target = mat_keypoints(annotations / f"{Path(row.target).stem}.mat")
        if len(source) != len(target):
            raise UnreadableFileError(
                annotations / f"{Path(row.target).stem}.mat", f"{len(target)} keypoints, its source has {len(source)}"
            )
        return source, target

    def load(self, index: int) -> KeypointPair:
        row = self.rows[index]
        source, target = self.keypoints(row)
        if len(source) > self.num_slots:
            raise UnreadableFileError(
                row.path, f"line {row.line}: {len(source)} keypoints, more than data.max_keypoints={self.num_slots}"
            )
        kpts0, kpts1 = np.zeros((self.num_slots, 2)), np.zeros((self.num_slots, 2))
        valid = np.zeros(self.num_slots, dtype=bool)
        valid[: len(source)] = ~(np.isnan(source).any(1) | np.isnan(target).any(1))
        kpts0[: len(source)], kpts1[: len(source)] = np.nan_to_num(source), np.nan_to_num(target)
        return KeypointPair(
            name=self.names[index],
            image0=self.root / row.source,
            image1=self.root / row.target,
            kpts0=kpts0,
            kpts1=kpts1,
            valid=valid,
            visible0=valid.copy(),
            visible1=valid.copy(),
            bbox0=None,
            bbox1=None,
            category=row.category,
            mirrored=row.flip,
        )


def find_csv(root: Path, split: str) -> Path:
    for candidate in csv_candidates(root, split):
        if candidate.is_file():
            return candidate
    raise DatasetNotFoundError(
        "PF-Pascal",
        root,
        LAYOUT,
        HOW_TO_GET,
        problem=f"has no '{split}' pair CSV (tried {', '.join(map(str, csv_candidates(root, split)))})",
    )


def verify(root: str | Path, splits: Sequence[str] | None = None) -> list[str]:
    """Problems of a PF-Pascal folder for the given splits (default: val and test, and train when its CSV is
    there; empty when complete): the image folder, the CSVs, every image they list, the .mat annotations of a
    CSV without keypoint columns (the training CSV, NCNet's val CSV), and every pair parsed as loading does."""
    root = Path(root)
    if not (root / "PF-dataset-PASCAL" / "JPEGImages").is_dir():
        return [f"missing folder {root / 'PF-dataset-PASCAL' / 'JPEGImages'}"]
    problems = []
    for split in splits or ("train", "val", "test"):
        try:
            rows = read_rows(find_csv(root, split))
        except DatasetNotFoundError:
            if split != "train" or splits:
                problems.append(f"no {split} CSV (tried {', '.join(map(str, csv_candidates(root, split)))})")
            continue
        except UnreadableFileError as error:
            problems.append(str(error))
            continue
        images = {r.source for r in rows} | {r.target for r in rows}
        lost = sorted(i for i in images if not (root / i).is_file())
        if lost:
            problems.append(f"{len(lost)} image(s) of the {split} CSV missing under {root}, e.g. {lost[0]}")
        if rows and rows[0].coordinates is None:
            mats = {(r.category, Path(i).stem) for r in rows for i in (r.source, r.target)}
            absent = sorted(
                f"{c}/{s}.mat"
                for c, s in mats
                if not (root / "PF-dataset-PASCAL" / "Annotations" / c / f"{s}.mat").is_file()
            )
            if absent:
                problems.append(
                    f"{len(absent)} annotation(s) for the {split} CSV (it has no keypoint columns) missing under "
                    f"{root / 'PF-dataset-PASCAL' / 'Annotations'}, e.g. {absent[0]}"
                )
                continue
        problems += PFPascalPairs(root, rows, ResizePolicy(), MAX_KEYPOINTS, 0.0).load_problems(f"the {split} CSV")
    return problems


class PFPascalDataModule(KeypointPairDataModule):
    """`data=pfpascal`: PF-Pascal, scored by default with `benchmark=pfpascal_pck` (L = the image's longer side;
    see docs/semantic.md).  max_keypoints: keypoint slots per pair (weakalign pads to 20).
    """

    name = "pfpascal"
    default_benchmark = "pfpascal_pck"

    def __init__(self, root: str, max_keypoints: int = MAX_KEYPOINTS, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.max_keypoints = max_keypoints
        self.csv: dict[str, Path] = {}

    def make_dataset(self, split: str) -> PFPascalPairs:
        if not (self.root / "PF-dataset-PASCAL" / "JPEGImages").is_dir():
            raise DatasetNotFoundError("PF-Pascal", self.root, LAYOUT, HOW_TO_GET)
        self.csv[split] = find_csv(self.root, split)
        rows = read_rows(self.csv[split])
        keep = self.keep_available(
            split, [pair_name(r) for r in rows], [(self.root / r.source, self.root / r.target) for r in rows]
        )
        flip = self.flip_probability if split == "train" else 0.0
        return PFPascalPairs(self.root, [rows[i] for i in keep], self.resize_for(split), self.max_keypoints, flip)

    def categories(self, split: str) -> list[str]:
        return sorted({r.category for r in self.dataset(split).rows})

    def geo_groups(self, split: str) -> None:
        return None

    def protocol_extra(self, split: str) -> dict:
        return {
            "pairs_csv": str(self.csv.get(split, "")),
            "bbox": "PF-Pascal CSVs have no boxes: bbox = the image frame",
        }
