"""Reading MegaDepth indices: D2-Net `scene_info/<scene>.npz` and LoFTR's `pair_infos` files (MegaDepth-1500).

Only the small arrays are read (paths, cameras, overlap and scale-ratio matrices); the SfM tracks
(`points3D_id_to_2D`, `points3D_id_to_ndepth`) stay on disk unless a caller asks for them.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.posed_index import PosedPairIndex, concat
from corrlab.safe_loading import load_npz, load_pickle, npz_keys

PATCH2PIX_TEST_SCENES = ("0024", "0021", "0025", "1589", "0019", "0008", "0032", "0063")  # IMW2020 test scenes
MEGADEPTH1500_SCENES = ("0015", "0022")
TEST1500_LIST = "megadepth_test_1500.txt"
LAYOUT = """\
<root>/                                                  (data.root)
  Undistorted_SfM/<scene>/images/*.jpg                   D2-Net undistorted images
  phoenix/S6/zl548/MegaDepth_v1/<scene>/dense0/depths/*.h5   depth maps (HDF5 dataset 'depth'; only with load_depth)
  scene_info/<scene>.npz                                 D2-Net scene info: image_paths, depth_paths, intrinsics,
                                                         poses (world->camera), overlap_matrix, scale_ratio_matrix, ...
  megadepth_test_1500_scene_info/                        MegaDepth-1500 index (LoFTR): 0015_0.1_0.3.npz ... 0022_0.5_0.7.npz
      megadepth_test_1500.txt                            (5 files x 300 pairs = 1500 pairs, scenes 0015 and 0022)
Also accepted: scene folders directly under the root (Patch2Pix's MegaDepth_undistort/<scene>/images) and
glue-factory's depth_undistorted/<scene>/<image>.h5."""
HOW_TO_GET = """\
MegaDepth v1 (Li & Snavely): https://www.cs.cornell.edu/projects/megadepth/
  MegaDepth_v1.tar.gz (199 GiB: 213,461,598,257 bytes; depth maps under phoenix/S6/zl548/MegaDepth_v1)
  MegaDepth_SfM_v1.tar.xz (the SfM models, needed to undistort and to build scene_info)
D2-Net preprocessing (https://github.com/mihaidusmanu/d2-net, megadepth_utils/): undistort_reconstructions.py
  (COLMAP image_undistorter -> Undistorted_SfM/) then preprocess_undistorted_megadepth.sh (-> scene_info/).
  Already processed: glue-factory serves https://cvg-data.inf.ethz.ch/megadepth/{Undistorted_SfM,depth_undistorted,scene_info}.tar.gz
MegaDepth-1500 test (LoFTR, https://github.com/zju3dv/LoFTR): index assets/megadepth_test_1500_scene_info/
  (5 .npz + megadepth_test_1500.txt, about 1.3 MB) and the test images megadepth_test_1500.tar from the
  LoFTR README's Google Drive "testdata" folder (scenes 0015 and 0022 under Undistorted_SfM/).
Training pair lists (Patch2Pix recipe): python -m corrlab.data_pairs.megadepth_pairs --root <root> --out <root>/pairs
Check a folder with: corrlab-data verify megadepth <root> [--part train|test1500]"""


def load_index_file(path: str | Path, keys: Sequence[str]) -> dict[str, Any]:
    """The listed entries of a scene-info file: an .npz archive (D2-Net) or a pickled dict (LoFTR), both
    holding pickled object arrays, read without running code (corrlab.safe_loading); an unreadable,
    unsafe or incomplete file names the file."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(path, "no such index file")
    try:
        if zipfile.is_zipfile(path):
            available = npz_keys(path)
            data = load_npz(path, [k for k in keys if k in available])
        else:
            data = load_pickle(path)
            available = list(data) if isinstance(data, dict) else None
    except UnreadableFileError:
        raise
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise UnreadableFileError(path, f"not a readable .npz or pickled scene-info dict ({error})") from error
    if available is None:
        raise UnreadableFileError(path, f"expected a dict of arrays, found {type(data).__name__}")
    missing = [k for k in keys if k not in available]
    if missing:
        raise UnreadableFileError(path, f"missing entries {missing} (has {sorted(available)})")
    return {k: data[k] for k in keys}


def _camera_arrays(info: dict[str, Any], rows: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(K (M,3,3), world-to-camera pose (M,4,4)) of the given image rows; poses may be stored flat."""
    try:
        K = (
            np.stack([np.asarray(info["intrinsics"][i], dtype=np.float64).reshape(3, 3) for i in rows])
            if len(rows)
            else np.zeros((0, 3, 3))
        )
        poses = (
            np.stack([np.asarray(info["poses"][i], dtype=np.float64).reshape(4, 4) for i in rows])
            if len(rows)
            else np.zeros((0, 4, 4))
        )
    except (TypeError, ValueError) as error:
        raise UnreadableFileError(path, f"intrinsics/poses of a listed image are not 3x3 / 4x4 ({error})") from error
    return K, poses


def image_table(info: dict[str, Any], rows: np.ndarray, scene: str, path: Path) -> dict[str, np.ndarray]:
    """The per-image arrays of PosedPairIndex for the given rows of a scene-info file."""
    K, poses = _camera_arrays(info, rows, path)
    depth_paths = info["depth_paths"]
    return {
        "images": np.array([str(info["image_paths"][i]) for i in rows], dtype=str),
        "depths": np.array(["" if depth_paths[i] is None else str(depth_paths[i]) for i in rows], dtype=str),
        "scenes": np.full(len(rows), scene),
        "K_image": K,
        "pose_image": poses,
    }


def image_size_from_intrinsics(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(width, height) implied by a centred principal point, 2 * (cx, cy), as Patch2Pix's pair script assumes."""
    return 2 * K[..., 0, 2], 2 * K[..., 1, 2]


SCENE_INFO_KEYS = ("image_paths", "depth_paths", "intrinsics", "poses", "overlap_matrix", "scale_ratio_matrix")


def candidate_pairs(
    info: dict[str, Any],
    path: Path,
    min_overlap: float = 0.35,
    max_overlap: float = 1.0,
    max_scale_ratio: float = float("inf"),
    aspect_range: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (i, j) of every ordered pair with overlap in [min_overlap, max_overlap) and scale ratio
    <= max_scale_ratio; with aspect_range, both images' width/height (from 2 * principal point, as
    Patch2Pix's pair script) must lie in it.  Images without a path or depth are never paired."""
    overlap, scale = np.asarray(info["overlap_matrix"], np.float64), np.asarray(info["scale_ratio_matrix"], np.float64)
    n = len(info["image_paths"])
    if overlap.shape != (n, n) or scale.shape != (n, n):
        raise UnreadableFileError(path, f"overlap/scale matrices are {overlap.shape}/{scale.shape} for {n} images")
    listed = np.array([p is not None for p in info["image_paths"]]) & np.array(
        [p is not None for p in info["depth_paths"]]
    )
    valid = (
        (overlap >= min_overlap)
        & (overlap < max_overlap)
        & (scale <= max_scale_ratio)
        & listed[:, None]
        & listed[None, :]
    )
    np.fill_diagonal(valid, False)
    if aspect_range is not None:
        rows = np.flatnonzero(valid.any(0) | valid.any(1))
        good = np.zeros(n, bool)
        if len(rows):
            width, height = image_size_from_intrinsics(_camera_arrays(info, rows, path)[0])
            good[rows] = (width / height >= aspect_range[0]) & (width / height <= aspect_range[1])
        valid &= good[:, None] & good[None, :]
    return np.nonzero(valid)


def index_from_rows(
    info: dict[str, Any], i: np.ndarray, j: np.ndarray, overlap: np.ndarray, scene: str, path: Path
) -> PosedPairIndex:
    """A per-image-camera index of the pairs (i, j) (rows of the scene-info file)."""
    rows = np.unique(np.concatenate([i, j]))
    pairs = np.stack([np.searchsorted(rows, i), np.searchsorted(rows, j)], axis=1).astype(np.int64).reshape(-1, 2)
    return PosedPairIndex(pairs=pairs, overlap=np.asarray(overlap, np.float64), **image_table(info, rows, scene, path))


def scene_info_pairs(path: str | Path, scene: str | None = None, **filters: Any) -> PosedPairIndex:
    """Every candidate pair (see candidate_pairs) of a D2-Net scene_info file."""
    path = Path(path)
    info = load_index_file(path, SCENE_INFO_KEYS)
    i, j = candidate_pairs(info, path, **filters)
    return index_from_rows(info, i, j, np.asarray(info["overlap_matrix"])[i, j], scene or path.name.split(".")[0], path)


def pair_info_pairs(path: str | Path, scene: str | None = None) -> PosedPairIndex:
    """The pairs listed in a LoFTR-style file's `pair_infos` ((i, j), overlap, central_matches)."""
    path = Path(path)
    scene = scene or path.name.split("_")[0]
    info = load_index_file(path, ("image_paths", "depth_paths", "intrinsics", "poses", "pair_infos"))
    try:
        listed = [(int(p[0][0]), int(p[0][1]), float(p[1])) for p in info["pair_infos"]]
    except (TypeError, ValueError, IndexError) as error:
        raise UnreadableFileError(path, f"pair_infos entries must be ((i, j), overlap, ...) ({error})") from error
    n = len(info["image_paths"])
    bad = [
        (i, j)
        for i, j, _ in listed
        if not (0 <= i < n and 0 <= j < n) or info["image_paths"][i] is None or info["image_paths"][j] is None
    ]
    if bad:
        raise UnreadableFileError(
            path, f"{len(bad)} pair_infos entries name images that are not listed, first {bad[0]}"
        )
    ij = np.array([(i, j) for i, j, _ in listed], dtype=np.int64).reshape(-1, 2)
    return index_from_rows(info, ij[:, 0], ij[:, 1], np.array([o for _, _, o in listed]), scene, path)


def megadepth1500_files(index_dir: str | Path) -> list[Path]:
    """The index files of MegaDepth-1500 named by megadepth_test_1500.txt (or every .npz when absent)."""
    index_dir = Path(index_dir)
    listing = index_dir / TEST1500_LIST
    if listing.is_file():
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        return [index_dir / (name if name.endswith(".npz") else f"{name}.npz") for name in names]
    return sorted(index_dir.glob("*.npz"))


def megadepth1500_pairs(index_dir: str | Path) -> PosedPairIndex:
    """All pairs of the MegaDepth-1500 index (LoFTR's megadepth_test_1500_scene_info)."""
    return concat([pair_info_pairs(path) for path in megadepth1500_files(index_dir)])


def resolve_image(root: Path, relative: str) -> Path | None:
    """root/relative, or Patch2Pix's layout without the Undistorted_SfM/ level; None when absent."""
    for candidate in (root / relative, root / relative.removeprefix("Undistorted_SfM/")):
        if candidate.is_file():
            return candidate
    return None


def resolve_depth(root: Path, relative: str, scene: str) -> Path | None:
    """root/relative, or glue-factory's depth_undistorted/<scene>/<image>.h5; None when absent."""
    if not relative:
        return None
    for candidate in (root / relative, root / "depth_undistorted" / scene / f"{PurePosixPath(relative).stem}.h5"):
        if candidate.is_file():
            return candidate
    return None
