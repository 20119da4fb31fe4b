"""The ETH3D multi-view benchmark of GLU-Net / DenseMatching: layout, pair files and their ground truth.

Pair files `info_ETH3D_files/<scene>_every_5_rate_of_<rate>` are pickled lists of dicts with
`source_image`, `target_image` (paths relative to the root) and sparse correspondences `Xs, Ys`
(source) <-> `Xt, Yt` (target): a source image every 5 frames, the target `rate` frames later.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corrlab.datamodules.errors import UnreadableFileError
from corrlab.safe_loading import load_pickle

TRAINING_SCENES = ("delivery_area", "electro", "forest", "playground", "terrains")  # multiview_training/
TESTING_SCENES = ("lakeside", "sand_box", "storage_room", "storage_room_2", "tunnel")  # multiview_testing/
SCENES = TESTING_SCENES + TRAINING_SCENES  # DenseMatching's evaluation order
RATES = (3, 5, 7, 9, 11, 13, 15)
INFO_DIR = "info_ETH3D_files"
ENTRY_KEYS = ("source_image", "target_image", "Xs", "Ys", "Xt", "Yt")
LAYOUT = """\
<root>/                                   (data.root)
  multiview_training/                     ETH3D low-res many-view training rig, all distorted images:
      delivery_area/ electro/ forest/ playground/ terrains/
  multiview_testing/                      ETH3D low-res many-view test rig, all undistorted images:
      lakeside/ sand_box/ storage_room/ storage_room_2/ tunnel/
  info_ETH3D_files/                       GLU-Net's pair files, one per scene and rate (70 files):
      <scene>_every_5_rate_of_<rate>      rate in 3 5 7 9 11 13 15; pickled list of dicts
                                          {source_image, target_image, Xs, Ys, Xt, Yt}"""
HOW_TO_GET = """\
ETH3D (https://www.eth3d.net/datasets), "Low-res many-view" data:
  https://www.eth3d.net/data/multi_view_training_rig.7z           (about 1.7 GB) -> 7z x into multiview_training/
  https://www.eth3d.net/data/multi_view_test_rig_undistorted.7z                  -> 7z x into multiview_testing/
Pair files (GLU-Net / DenseMatching, assets/download_ETH3D.sh in https://github.com/PruneTruong/GLU-Net):
  the Google Drive file linked from DenseMatching's README ("ETH3D" section,
  https://drive.google.com/file/d/1Okqs5QYetgVu_HERS88DuvsABGak08iN), unzipped into info_ETH3D_files/.
Check a folder with: corrlab-data verify eth3d <root>"""


def scene_folder(scene: str) -> str:
    """multiview_training/<scene> or multiview_testing/<scene>."""
    if scene not in SCENES:
        raise ValueError(f"unknown ETH3D scene '{scene}'; the 10 scenes are {', '.join(SCENES)}")
    return f"{'multiview_training' if scene in TRAINING_SCENES else 'multiview_testing'}/{scene}"


def pairs_file(root: str | Path, scene: str, rate: int) -> Path:
    return Path(root) / INFO_DIR / f"{scene}_every_5_rate_of_{rate}"


def load_pairs_file(path: str | Path) -> list[dict[str, Any]]:
    """The entries of one pair file; names the file (and the entry) when it is malformed."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(path, "no such ETH3D pair file")
    try:
        content = load_pickle(path)  # official pickles, read without running code (only numpy and builtin values)
    except UnreadableFileError:
        raise
    except (
        OSError,
        EOFError,
        pickle.UnpicklingError,
        AttributeError,
        ImportError,
        IndexError,
        TypeError,
        ValueError,
    ) as error:
        raise UnreadableFileError(
            path, f"not a readable pickled pair list ({type(error).__name__}: {error})"
        ) from error
    entries = list(content) if isinstance(content, (list, tuple, np.ndarray)) else None
    if entries is None:
        raise UnreadableFileError(path, f"expected a list of pair dicts, found {type(content).__name__}")
    for number, entry in enumerate(entries):
        missing = [k for k in ENTRY_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise UnreadableFileError(path, f"entry {number} lacks {missing}")
    return entries


def target_grid_correspondences(entry: dict[str, Any], target_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """DenseMatching's sparse ground truth on the target grid: (target pixels (N, 2), source points (N, 2)).

    The target point is rounded to its pixel p and the source point becomes p + (Xs - Xt, Ys - Yt)
    (the flow DenseMatching stores there).  Several points rounding to one pixel keep the last one, as
    its dense map does; points rounding outside the target image are dropped.
    """
    xs, ys, xt, yt = (np.asarray(entry[k], dtype=np.float32).reshape(-1) for k in ("Xs", "Ys", "Xt", "Yt"))
    height, width = target_size
    px, py = np.round(xt).astype(np.int64), np.round(yt).astype(np.int64)
    inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
    flat = np.where(inside, py * width + px, -1)
    last = len(flat) - 1 - np.unique(flat[::-1], return_index=True)[1]
    keep = np.sort(last[flat[last] >= 0])
    target = np.stack([px[keep], py[keep]], axis=1).astype(np.float64)
    flow = np.stack([xs[keep] - xt[keep], ys[keep] - yt[keep]], axis=1).astype(np.float64)
    return target, target + flow
