"""`data=kitti2012` / `data=kitti2015`: the KITTI optical flow training pairs with their sparse ground truth, read
from the official layout (DenseMatching's KITTI_occ / KITTI_noc / KITTI_only_occ), evaluated at the original size.

image0 = <id>_10.png (the frame the GT flow lives on: DenseMatching's target), image1 = <id>_11.png (its source);
`flow` (H, W, 2) points from image 0 into image 1, `flow_valid` marks the pixels with ground truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from corrlab.benchmarks.base import BenchmarkData
from corrlab.datamodules.base import PairDataModule
from corrlab.datamodules.errors import DatasetNotFoundError, UnreadableFileError
from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.kitti_layout import MASKS, YEARS, flow_dir, how_to_get, layout, pair_files, pair_ids
from corrlab.datamodules.pair_dataset import PairDataset, image_id

FLOW_OFFSET, FLOW_SCALE = 2**15, 64.0  # KITTI devkit: stored = flow * 64 + 2^15 in 16 bits


def read_kitti_flow(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A KITTI flow PNG -> flow (H, W, 2) float32 (u, v) = ((R, G) - 2^15) / 64 and valid (H, W) bool = (B == 1);
    invalid pixels get flow 0.  Raises UnreadableFileError naming the file when it is not a 16-bit RGB PNG whose B
    channel holds only 0 / 1."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(path, "no such file")
    png = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # B, G, R
    if png is None or png.dtype != np.uint16 or png.ndim != 3 or png.shape[2] != 3:
        found = "undecodable" if png is None else f"{png.dtype} with shape {png.shape}"
        raise UnreadableFileError(path, f"not a KITTI flow map (a 16-bit 3-channel PNG), got {found}")
    if not np.isin(png[..., 0], (0, 1)).all():
        raise UnreadableFileError(path, "the validity (blue) channel of a KITTI flow map holds only 0 and 1")
    valid = png[..., 0] == 1
    flow = (png[..., 2:0:-1].astype(np.float32) - FLOW_OFFSET) / FLOW_SCALE
    flow[~valid] = 0.0
    return flow, valid


def write_kitti_flow(path: str | Path, flow: np.ndarray, valid: np.ndarray) -> None:
    """The devkit's encoding of flow (H, W, 2) and valid (H, W): R, G = clip(flow * 64 + 2^15, 0, 65535) (truncated
    to 16 bits), B = valid; invalid pixels store 0 in every channel."""
    stored = np.clip(flow.astype(np.float64) * FLOW_SCALE + FLOW_OFFSET, 0, 2**16 - 1).astype(np.uint16)
    png = np.zeros((*flow.shape[:2], 3), np.uint16)
    png[..., 2], png[..., 1], png[..., 0] = stored[..., 0], stored[..., 1], valid.astype(np.uint16)
    png[~valid.astype(bool)] = 0
    if not cv2.imwrite(str(path), png):
        raise OSError(f"cannot write '{path}'")


class KITTIFlowPairs(PairDataset):
    """Every training pair that has a flow map in the mask's folder, sorted by id."""

    def __init__(self, root: str | Path, year: int, mask: str, on_missing: str = "error") -> None:
        if year not in YEARS:
            raise ValueError(f"KITTI year must be one of {YEARS}, got {year}")
        if on_missing not in ("error", "skip"):
            raise ValueError(f"data.on_missing must be error or skip, got '{on_missing}'")
        self.root, self.year, self.mask = Path(root), year, mask
        folder = self.root / "training" / flow_dir(mask)
        if not folder.is_dir():
            raise DatasetNotFoundError(f"KITTI-{year}", self.root, layout(year), how_to_get(year), f"has no {folder}")
        ids = pair_ids(self.root, mask)
        files = {i: pair_files(year, i, mask) for i in ids}
        missing = [i for i in ids if not all((self.root / f).is_file() for f in files[i].values())]
        if missing and on_missing == "error":
            absent = next(f for f in files[missing[0]].values() if not (self.root / f).is_file())
            raise UnreadableFileError(
                self.root / absent,
                f"{len(missing)} of {len(ids)} pairs miss a frame or flow map "
                "(set data.on_missing=skip to evaluate without them)",
            )
        self.skipped = missing
        self.ids = [i for i in ids if i not in missing]
        self.files = files

    def __len__(self) -> int:
        return len(self.ids)

    def pair_names(self) -> list[str]:
        return list(self.ids)

    def ground_truth(self, pair_id: str) -> tuple[np.ndarray, np.ndarray]:
        files = self.files[pair_id]
        flow, valid = read_kitti_flow(self.root / files["flow"])
        if self.mask == "only_occ":  # DenseMatching's KITTI_only_occ: valid in flow_occ, not in flow_noc
            _, valid_noc = read_kitti_flow(self.root / files["flow_noc"])
            valid = valid & ~valid_noc
        return flow, valid

    def __getitem__(self, index: int) -> dict:
        pair_id = self.ids[index]
        files = self.files[pair_id]
        image0, image1 = read_image(self.root / files["image0"]), read_image(self.root / files["image1"])
        flow, valid = self.ground_truth(pair_id)
        if flow.shape[:2] != tuple(image0.shape[-2:]):
            raise UnreadableFileError(
                self.root / files["flow"], f"flow map is {flow.shape[:2]}, its frame is {tuple(image0.shape[-2:])}"
            )
        return {
            "image0": image0,
            "image1": image1,
            "flow": torch.from_numpy(flow),
            "flow_valid": torch.from_numpy(valid),
            "name": pair_id,
            "image0_id": image_id(files["image0"]),
            "image1_id": image_id(files["image1"]),
            "size0": torch.tensor(image0.shape[-2:]),
            "size1": torch.tensor(image1.shape[-2:]),
            "scale0": torch.ones(2),
            "scale1": torch.ones(2),
        }


class KITTIFlowDataModule(PairDataModule):
    """An evaluation benchmark (val = test = the training pairs, the only ones with ground truth).  mask: occ (all
    pixels with GT, flow_occ: DenseMatching's evaluation), noc (flow_noc) or only_occ (occluded pixels only)."""

    default_benchmark = "kitti"

    def __init__(self, root: str, year: int, mask: str = "occ", on_missing: str = "error", **loader_kwargs) -> None:
        super().__init__(**loader_kwargs)
        if mask not in MASKS:
            raise ValueError(f"data.mask must be one of {MASKS}, got '{mask}'")
        self.root, self.year, self.mask, self.on_missing = root, int(year), mask, on_missing
        self.name = f"kitti{self.year}"

    def make_dataset(self, split: str) -> KITTIFlowPairs:
        if split == "train":
            raise ValueError(f"{self.name} is an evaluation benchmark here: it has no training split")
        return KITTIFlowPairs(self.root, self.year, self.mask, self.on_missing)

    def benchmark_data(self, split: str) -> BenchmarkData:
        dataset = self.dataset(split)
        return BenchmarkData(
            dataset=self.name,
            split=split,
            pair_names=dataset.pair_names(),
            ground_truth=("flow", "flow_valid"),
            resize={"mode": "none"},
            extra_spec={
                "source": f"KITTI-{self.year} optical flow training set, official layout",
                "mask": self.mask,
                "ground_truth": f"training/{flow_dir(self.mask)}/<id>_10.png on image 0 = <id>_10 into image 1 = "
                "<id>_11; u, v = (R, G - 2^15) / 64, valid where B = 1"
                + ("; minus flow_noc's valid pixels (occluded only)" if self.mask == "only_occ" else ""),
                "frame": "original size (the methods resize internally, as DenseMatching's estimate_flow)",
                "skipped": {"count": len(dataset.skipped), "names": dataset.skipped[:20]},
            },
        )
