"""MegaDepth posed pairs: images (and depth) read from the index's paths, cropped and resized with K following."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.image_io import read_image
from corrlab.datamodules.megadepth_index import resolve_depth, resolve_image
from corrlab.datamodules.pair_dataset import PairDataset, image_id
from corrlab.datamodules.posed_index import PosedPair, PosedPairIndex
from corrlab.datamodules.resize import ResizePolicy
from corrlab.geometry.scaling import intrinsics_corner_to_centre, intrinsics_to_resized

log = logging.getLogger(__name__)
ON_MISSING = ("error", "skip")
MAX_NAMED = 5  # skipped pairs named in the log


def read_depth(path: str | Path) -> Tensor:
    """H x W float32 depth from an HDF5 file's 'depth' dataset (0 = unknown); names the file on failure."""
    try:
        with h5py.File(path, "r") as handle:
            if "depth" not in handle:
                raise UnreadableFileError(path, f"no 'depth' dataset (has {sorted(handle)})")
            depth = np.asarray(handle["depth"], dtype=np.float32)
    except OSError as error:
        raise UnreadableFileError(path, f"not a readable HDF5 depth map ({error})") from error
    if depth.ndim != 2:
        raise UnreadableFileError(path, f"depth must be H x W, found shape {depth.shape}")
    return torch.from_numpy(depth)


def top_left_crop(height: int, width: int, aspect: float) -> tuple[int, int]:
    """The largest (h, w) window at the top-left corner with w / h exactly `aspect` (as a small fraction
    p/q: w = p*k, h = q*k), i.e. Patch2Pix's crop from the bottom-right to 3:2."""
    ratio = Fraction(aspect).limit_denominator(100)
    k = min(width // ratio.numerator, height // ratio.denominator)
    if k == 0:
        return height, width
    return ratio.denominator * k, ratio.numerator * k


class MegaDepthPairs(PairDataset):
    """Pairs of a PosedPairIndex read from `root`, following the batch contract of posed pairs.

    Every referenced file is located once, up front.  With on_missing='error' a missing file fails
    here, named; with 'skip' the pairs that need it are dropped, counted and named in the log and in
    `self.skipped`.  With `substitute_unreadable` (training) a file that exists but cannot be decoded
    is logged and the next pair served instead of stopping the epoch.
    """

    def __init__(
        self,
        root: str | Path,
        index: PosedPairIndex,
        resize: ResizePolicy,
        crop_aspect: float | None = None,
        load_depth: bool = False,
        on_missing: str = "error",
        substitute_unreadable: bool = False,
    ) -> None:
        if on_missing not in ON_MISSING:
            raise ValueError(f"data.on_missing must be one of {ON_MISSING}, got '{on_missing}'")
        self.root = Path(root)
        self.resize = resize
        self.crop_aspect = crop_aspect
        self.load_depth = load_depth
        self.substitute_unreadable = substitute_unreadable
        images = np.array([str(resolve_image(self.root, p) or "") for p in index.images])
        depths = np.array([str(resolve_depth(self.root, p, s) or "") for p, s in zip(index.depths, index.scenes)])
        needed = images != ""
        if load_depth:
            needed &= depths != ""
        ok = needed[index.pairs[:, 0]] & needed[index.pairs[:, 1]] if len(index) else np.zeros(0, bool)
        self.skipped = [index.pair_name(i) for i in np.flatnonzero(~ok)]
        if self.skipped:
            missing = self._first_missing(index, images, depths, int(np.flatnonzero(~ok)[0]))
            message = f"{len(self.skipped)} of {len(index)} pairs reference missing files (first: {missing})"
            if on_missing == "error":
                raise UnreadableFileError(missing, f"{message}; set data.on_missing=skip to leave those pairs out")
            if ok.sum() == 0:
                raise UnreadableFileError(missing, f"{message}: nothing left to load; check data.root / data.test_root")
            log.warning(
                "%s; skipped: %s%s",
                message,
                ", ".join(self.skipped[:MAX_NAMED]),
                " ..." if len(self.skipped) > MAX_NAMED else "",
            )
        self.index = index.subset(ok)
        self.image_files, self.depth_files = images, depths

    def _first_missing(self, index: PosedPairIndex, images: np.ndarray, depths: np.ndarray, i: int) -> Path:
        for j in index.pairs[i]:
            if not images[j]:
                return self.root / str(index.images[j])
            if self.load_depth and not depths[j]:
                return (
                    self.root / str(index.depths[j])
                    if index.depths[j]
                    else self.root / f"<no depth listed for {index.images[j]}>"
                )
        raise AssertionError("pair has no missing file")

    def __len__(self) -> int:
        return len(self.index)

    def pair_names(self) -> list[str]:
        return self.index.pair_names()

    def __getitem__(self, i: int) -> dict:
        for attempt in range(len(self)):
            j = (i + attempt) % len(self)
            try:
                return self.load(j)
            except UnreadableFileError as error:
                if not self.substitute_unreadable:
                    raise
                log.warning("skipping pair %s: %s", self.index.pair_name(j), error)
        raise UnreadableFileError(self.root, "no pair of the index could be read")

    def load(self, i: int) -> dict:
        pair: PosedPair = self.index.pair(i)
        i0, i1 = self.index.pairs[i]
        image0, depth0, size0, scale0, K0 = self._view(i0, pair.K0)
        image1, depth1, size1, scale1, K1 = self._view(i1, pair.K1)
        sample = {
            "image0": image0,
            "image1": image1,
            "name": pair.name,
            "image0_id": image_id(str(self.index.images[i0])),
            "image1_id": image_id(str(self.index.images[i1])),
            "size0": size0,
            "size1": size1,
            "scale0": scale0,
            "scale1": scale1,
            "K0": K0,
            "K1": K1,
            "T_0to1": torch.from_numpy(pair.T_0to1).float(),
        }
        if self.load_depth:
            sample.update(depth0=depth0, depth1=depth1)
        return sample

    def _view(self, row: int, K: np.ndarray) -> tuple[Tensor, Tensor | None, Tensor, Tensor, Tensor]:
        """(image, depth, size before resizing, scale, K in the batch frame) of one image."""
        image = read_image(self.image_files[row])
        depth = None
        if self.load_depth:
            depth = read_depth(self.depth_files[row])
            if depth.shape != image.shape[-2:]:
                raise UnreadableFileError(
                    self.depth_files[row],
                    f"depth is {tuple(depth.shape)} but its image {self.image_files[row]} is {tuple(image.shape[-2:])}",
                )
        if self.crop_aspect:
            h, w = top_left_crop(*image.shape[-2:], self.crop_aspect)
            image = image[:, :h, :w]
            depth = None if depth is None else depth[:h, :w]
        size = torch.tensor(image.shape[-2:])
        image, scale = self.resize(image)
        if depth is not None:
            depth = F.interpolate(depth[None, None], size=image.shape[-2:], mode="nearest-exact")[0, 0]
        K_batch = intrinsics_to_resized(intrinsics_corner_to_centre(torch.from_numpy(K)), scale.double())
        return image, depth, size, scale, K_batch.float()
