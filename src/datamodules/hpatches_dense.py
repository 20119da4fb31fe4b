"""Dense HPatches (DGC-Net / GLU-Net / DenseMatching protocol): the 59 `v_` sequences, pairs 1 -> 2..6 (295), from
the official CSVs, with the ground-truth flow of the homography on the target grid."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.datamodules.base import PairDataModule
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.hpatches_dense_layout import CSV_NAME, HOW_TO_GET, LAYOUT, read_pair_csv
from corrlab.datamodules.image_io import read_image_array, to_tensor
from corrlab.datamodules.pair_dataset import PairDataset, image_id


def scaled_homography(H: np.ndarray, size_ref: tuple[int, int], size_trg: tuple[int, int], size: tuple[int, int]):
    """H (reference -> target, original pixels) between both images resized to `size` (h, w), as DenseMatching
    scales it: S_trg H S_ref^-1 with S = diag(w / W, h / H, 1) (no half-pixel shift)."""
    (h, w), (h1, w1), (h2, w2) = size, size_ref, size_trg
    S1 = np.diag([w / w1, h / h1, 1.0])
    S2 = np.diag([w / w2, h / h2, 1.0])
    return S2 @ H @ np.linalg.inv(S1)


def target_flow(H_scaled: np.ndarray, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """DenseMatching's ground truth on the target grid (h, w): the source position H^-1 p of every target pixel p
    minus p, and the mask of positions inside [0, w-1] x [0, h-1].  Same arithmetic as the reference (homogeneous
    coordinates in float64, cast to float32, divided by z + 1e-8 in float32), so the values agree bit for bit."""
    h, w = size
    X, Y = np.meshgrid(np.linspace(0, w - 1, w), np.linspace(0, h - 1, h))
    mapped = torch.from_numpy(np.linalg.inv(H_scaled) @ np.stack([X.ravel(), Y.ravel(), np.ones(h * w)])).float()
    x = (mapped[0] / (mapped[2] + 1e-8)).reshape(h, w)
    y = (mapped[1] / (mapped[2] + 1e-8)).reshape(h, w)
    valid = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    flow = torch.stack([x.double() - torch.from_numpy(X), y.double() - torch.from_numpy(Y)], dim=-1)
    return flow.float(), valid


class HPatchesDensePairs(PairDataset):
    """The CSV's pairs with image 0 = image k (DenseMatching's target) and image 1 = image 1 (its source), both
    resized (cv2.resize, bilinear) to `image_size` or, when None, to image k's original size; `flow` /
    `flow_valid` on image 0's grid into image 1, so Matches.warp of image 0 is DenseMatching's flow + grid."""

    def __init__(self, root: str | Path, csv_path: str | Path, image_size: tuple[int, int] | None, on_missing: str):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetNotFoundError("HPatches (dense)", self.root, LAYOUT, HOW_TO_GET)
        if on_missing not in ("error", "skip"):
            raise ValueError(f"data.on_missing must be error or skip, got '{on_missing}'")
        rows = read_pair_csv(Path(csv_path))
        missing = [r for r in rows if not (self.image(r, "im1").is_file() and self.image(r, "im2").is_file())]
        if missing and on_missing == "error":
            first = missing[0]
            raise UnreadableFileError(
                self.image(first, "im1"),
                f"{len(missing)} of {len(rows)} pairs of {csv_path} have a missing image "
                "(set data.on_missing=skip to evaluate without them)",
            )
        self.skipped = [self.name(r) for r in missing]
        self.rows = [r for r in rows if r not in missing]
        self.image_size = tuple(image_size) if image_size is not None else None

    def view_id(self, path: Path, image: np.ndarray, size: tuple[int, int]) -> str:
        """The image's id, marked with the size it is resized to when that is not its own (image 1 takes each
        image k's size at original resolution, so its pixels differ from pair to pair)."""
        own = tuple(image.shape[:2])
        return image_id(path, self.root, "" if own == size else f"{size[0]}x{size[1]}")

    def image(self, row: dict, key: str) -> Path:
        return self.root / row["obj"] / f"{row[key]}.ppm"

    @staticmethod
    def name(row: dict) -> str:
        return f"{row['obj']}/{row['im1']}-{row['im2']}"

    def __len__(self) -> int:
        return len(self.rows)

    def pair_names(self) -> list[str]:
        return [self.name(r) for r in self.rows]

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        source, target = read_image_array(self.image(row, "im1")), read_image_array(self.image(row, "im2"))
        size = self.image_size or target.shape[:2]
        h, w = int(size[0]), int(size[1])
        flow, valid = target_flow(scaled_homography(row["H"], row["size1"], target.shape[:2], (h, w)), (h, w))
        size0, size1 = torch.tensor(target.shape[:2]), torch.tensor(source.shape[:2])
        return {
            "image0": to_tensor(cv2.resize(target, (w, h), interpolation=cv2.INTER_LINEAR)),
            "image1": to_tensor(cv2.resize(source, (w, h), interpolation=cv2.INTER_LINEAR)),
            "flow": flow,
            "flow_valid": valid,
            "name": self.name(row),
            "image0_id": self.view_id(self.image(row, "im2"), target, (h, w)),
            "image1_id": self.view_id(self.image(row, "im1"), source, (h, w)),
            "size0": size0,
            "size1": size1,
            "scale0": torch.tensor([w / target.shape[1], h / target.shape[0]], dtype=torch.float32),
            "scale1": torch.tensor([w / source.shape[1], h / source.shape[0]], dtype=torch.float32),
        }


class HPatchesDenseDataModule(PairDataModule):
    """`data=hpatches_dense`: an evaluation benchmark (val = test, no train split).  image_size: null evaluates
    at image k's original size (DenseMatching `hp`), [240, 240] as `hp-240`.  Groups `1-k` hold the pairs 1 -> k
    (DenseMatching's scene_1..5)."""

    name = "hpatches_dense"
    default_benchmark = "hpatches_dense"

    def __init__(
        self,
        root: str,
        csv_dir: str,
        image_size: list[int] | None = None,
        on_missing: str = "error",
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        if image_size is not None and len(image_size) != 2:
            raise ValueError(f"data.image_size must be null or [height, width], got {image_size}")
        self.root, self.csv_path = root, Path(csv_dir) / CSV_NAME
        self.image_size, self.on_missing = image_size, on_missing

    def make_dataset(self, split: str) -> HPatchesDensePairs:
        if split == "train":
            raise ValueError("dense HPatches is an evaluation benchmark: it has no training split")
        return HPatchesDensePairs(self.root, self.csv_path, self.image_size, self.on_missing)

    def benchmark_data(self, split: str) -> BenchmarkData:
        dataset = self.dataset(split)
        return BenchmarkData(
            dataset="hpatches_dense",
            split=split,
            pair_names=dataset.pair_names(),
            ground_truth=("flow", "flow_valid"),
            resize={"mode": "fixed", "size": list(self.image_size)} if self.image_size else {"mode": "target size"},
            groups=("all", *(f"1-{k}" for k in range(2, 7))),
            group_of=lambda name: name.split("/")[-1],
            extra_spec={
                "source": "DGC-Net / DenseMatching assets/hpatches_all.csv (59 v_ sequences, pairs 1 -> 2..6)",
                "frame": "both images resized (cv2 bilinear) to image k's original size"
                if self.image_size is None
                else f"both images resized (cv2 bilinear) to {self.image_size[0]}x{self.image_size[1]} (hp-240)",
                "ground_truth": "flow on image k's grid (image 0) into image 1: H_s^-1 p - p, H_s = S_k H S_1^-1 with "
                "S = diag(w / W, h / H, 1); valid where H_s^-1 p lies in [0, w-1] x [0, h-1]",
                "skipped": {"count": len(dataset.skipped), "names": dataset.skipped[:20]},
            },
        )
