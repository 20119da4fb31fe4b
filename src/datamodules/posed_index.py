"""A compact in-memory index of posed image pairs, and corrlab's pair-list file format.

The index holds paths, cameras and pair indices only (no images, depths or SfM tracks), so its
memory is the size of the index itself.  Cameras are stored either per image (scene_info files:
intrinsics + world-to-camera poses) or per pair (pair lists: K0, K1, T_0to1).

Pair-list file (`.npz`, written by `python -m corrlab.data_pairs.megadepth_pairs`, no pickled objects):
    images   (M,)  str      image paths relative to the dataset root (Undistorted_SfM/<scene>/images/<f>.jpg)
    depths   (M,)  str      depth paths relative to the root, '' when unknown
    scenes   (M,)  str      scene of each image
    pairs    (N,2) int64    indices into images: (image0, image1)
    overlap  (N,)  float64  the scene_info overlap of the pair
    K0, K1   (N,3,3) f64    intrinsics as in scene_info (COLMAP: pixel-corner convention)
    T_0to1   (N,4,4) f64    relative pose, camera 0 -> camera 1
    meta     ()    str      JSON: {"format": "corrlab-posed-pairs/1", "recipe": {...}, "seed": ..., ...}
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from corrlab.datamodules.errors import UnreadableFileError

FORMAT = "corrlab-posed-pairs/1"
PAIR_LIST_KEYS = ("images", "depths", "scenes", "pairs", "overlap", "K0", "K1", "T_0to1", "meta")


@dataclass(frozen=True)
class PosedPair:
    """One pair as the dataset needs it (paths relative to the root, cameras in COLMAP convention)."""

    name: str
    scene: str
    image0: str
    image1: str
    depth0: str
    depth1: str
    K0: np.ndarray
    K1: np.ndarray
    T_0to1: np.ndarray
    overlap: float


@dataclass
class PosedPairIndex:
    """Pairs of images with cameras; exactly one of (K_image, pose_image) or (K0, K1, T_0to1) is set."""

    images: np.ndarray
    depths: np.ndarray
    scenes: np.ndarray
    pairs: np.ndarray
    overlap: np.ndarray
    K_image: np.ndarray | None = None
    pose_image: np.ndarray | None = None
    K0: np.ndarray | None = None
    K1: np.ndarray | None = None
    T_0to1: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def pair_name(self, i: int) -> str:
        i0, i1 = self.pairs[i]
        return (
            f"{self.scenes[i0]}/{PurePosixPath(str(self.images[i0])).stem}-{PurePosixPath(str(self.images[i1])).stem}"
        )

    def pair_names(self) -> list[str]:
        return [self.pair_name(i) for i in range(len(self))]

    def pair_scenes(self) -> np.ndarray:
        """Scene of each pair (N,)."""
        return self.scenes[self.pairs[:, 0]] if len(self) else np.zeros(0, dtype=str)

    def cameras(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(K0, K1, T_0to1) of pair i, float64."""
        if self.K0 is not None:
            return self.K0[i], self.K1[i], self.T_0to1[i]
        i0, i1 = self.pairs[i]
        T = self.pose_image[i1] @ np.linalg.inv(self.pose_image[i0])
        return self.K_image[i0], self.K_image[i1], T

    def pair(self, i: int) -> PosedPair:
        i0, i1 = self.pairs[i]
        K0, K1, T = self.cameras(i)
        return PosedPair(
            self.pair_name(i),
            str(self.scenes[i0]),
            str(self.images[i0]),
            str(self.images[i1]),
            str(self.depths[i0]),
            str(self.depths[i1]),
            K0,
            K1,
            T,
            float(self.overlap[i]),
        )

    def subset(self, keep: np.ndarray) -> PosedPairIndex:
        """The pairs where `keep` (N,) bool is true, in order (image tables kept whole)."""
        per_pair = {
            k: (None if v is None else v[keep]) for k, v in (("K0", self.K0), ("K1", self.K1), ("T_0to1", self.T_0to1))
        }
        return PosedPairIndex(
            self.images,
            self.depths,
            self.scenes,
            self.pairs[keep],
            self.overlap[keep],
            self.K_image,
            self.pose_image,
            **per_pair,
        )

    def with_pair_cameras(self) -> PosedPairIndex:
        """The same pairs with cameras stored per pair (what pair-list files hold)."""
        if self.K0 is not None:
            return self
        cameras = [self.cameras(i) for i in range(len(self))]
        stack = lambda j, shape: np.stack([c[j] for c in cameras]) if cameras else np.zeros((0, *shape))  # noqa: E731
        return PosedPairIndex(
            self.images,
            self.depths,
            self.scenes,
            self.pairs,
            self.overlap,
            K0=stack(0, (3, 3)),
            K1=stack(1, (3, 3)),
            T_0to1=stack(2, (4, 4)),
        )


def concat(indices: list[PosedPairIndex]) -> PosedPairIndex:
    """One index from several (image tables appended, pair indices shifted); all of one camera kind."""
    if not indices:
        return empty_index()
    per_image = indices[0].K0 is None
    if any((index.K0 is None) != per_image for index in indices):
        raise ValueError("cannot concatenate per-image and per-pair camera indices")
    offsets = np.cumsum([0] + [len(index.images) for index in indices[:-1]])
    cat = lambda name: np.concatenate([getattr(index, name) for index in indices])  # noqa: E731
    return PosedPairIndex(
        images=cat("images"),
        depths=cat("depths"),
        scenes=cat("scenes"),
        pairs=np.concatenate([index.pairs + offset for index, offset in zip(indices, offsets)]).reshape(-1, 2),
        overlap=cat("overlap"),
        **(
            {"K_image": cat("K_image"), "pose_image": cat("pose_image")}
            if per_image
            else {"K0": cat("K0"), "K1": cat("K1"), "T_0to1": cat("T_0to1")}
        ),
    )


def empty_index() -> PosedPairIndex:
    strings = np.zeros(0, dtype=str)
    return PosedPairIndex(
        strings,
        strings,
        strings,
        np.zeros((0, 2), np.int64),
        np.zeros(0, np.float64),
        np.zeros((0, 3, 3)),
        np.zeros((0, 4, 4)),
    )


def save_pair_list(path: str | Path, index: PosedPairIndex, meta: dict[str, Any]) -> Path:
    """Write the pair-list format (see the module docstring); `meta` gets the format tag."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    index = index.with_pair_cameras()
    np.savez_compressed(
        path,
        images=index.images.astype(str),
        depths=index.depths.astype(str),
        scenes=index.scenes.astype(str),
        pairs=index.pairs.astype(np.int64),
        overlap=index.overlap.astype(np.float64),
        K0=index.K0.astype(np.float64),
        K1=index.K1.astype(np.float64),
        T_0to1=index.T_0to1.astype(np.float64),
        meta=np.array(json.dumps({"format": FORMAT, **meta}, sort_keys=True)),
    )
    return path


def load_pair_list(path: str | Path) -> tuple[PosedPairIndex, dict[str, Any]]:
    """Read a pair-list file; a malformed one names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(
            path, "no such pair list (write one with: python -m corrlab.data_pairs.megadepth_pairs --help)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in PAIR_LIST_KEYS if k not in data.files]
            if missing:
                raise UnreadableFileError(path, f"not a corrlab pair list: missing arrays {missing}")
            arrays = {k: data[k] for k in PAIR_LIST_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UnreadableFileError(path, f"not a readable .npz pair list ({error})") from error
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as error:
        raise UnreadableFileError(path, f"its 'meta' entry is not JSON ({error})") from error
    if meta.get("format") != FORMAT:
        raise UnreadableFileError(path, f"format '{meta.get('format')}' is not {FORMAT}")
    n, m = len(arrays["pairs"]), len(arrays["images"])
    shapes = {
        "pairs": (n, 2),
        "overlap": (n,),
        "K0": (n, 3, 3),
        "K1": (n, 3, 3),
        "T_0to1": (n, 4, 4),
        "depths": (m,),
        "scenes": (m,),
    }
    for key, shape in shapes.items():
        if arrays[key].shape != shape:
            raise UnreadableFileError(path, f"array '{key}' has shape {arrays[key].shape}, expected {shape}")
    if n and (arrays["pairs"].min() < 0 or arrays["pairs"].max() >= m):
        raise UnreadableFileError(path, f"pair indices outside the {m} listed images")
    return PosedPairIndex(**arrays), meta
