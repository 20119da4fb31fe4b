"""MegaDepth training and validation pair lists from D2-Net scene_info files (Patch2Pix's recipe by default).

    python -m corrlab.data_pairs.megadepth_pairs --root <megadepth root> --out <dir> [--seed 0]

Per scene (Patch2Pix, data_pairs/prep_megadepth_training_pairs.ipynb): every ordered pair with
overlap in [0.35, 1); both images' width/height (2 x principal point) in [1.3, 1.7] (landscape, croppable
to 3:2); the candidates shuffled, then taken in order while the mean *squared* Sampson distance of the
pair's SfM matches under the ground-truth F stays <= 1 px^2, up to 500 pairs.  The 8 IMW2020 test
scenes (0024 0021 0025 1589 0019 0008 0032 0063) are left out of the training list.  Patch2Pix applies no
scale-ratio limit (its file name's "imrat1.5" is the 3:2 aspect ratio); --max-scale-ratio adds one.

The validation list draws --val-pairs-per-scene pairs (same filters) from --val-scenes, which default
to the excluded scenes: corrlab evaluates on none of them, and the training list stays Patch2Pix's.
Outputs <out>/train.npz and <out>/val.npz in corrlab's pair-list format (src/datamodules/posed_index.py),
reproducible from --seed: each scene draws from its own generator seeded by (seed, crc32(scene)).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.megadepth_index import (
    PATCH2PIX_TEST_SCENES,
    SCENE_INFO_KEYS,
    candidate_pairs,
    index_from_rows,
    load_index_file,
)
from corrlab.datamodules.posed_index import PosedPairIndex, concat, save_pair_list
from corrlab.geometry.epipolar import fundamental_from_pose, sampson_distance

OVERLAP_BINS = (0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1.05)


def mean_squared_sampson(info: dict[str, Any], i: int, j: int) -> float:
    """Mean squared Sampson distance (px^2) of the SfM matches of images i, j under their GT fundamental matrix."""
    tracks0, tracks1 = info["points3D_id_to_2D"][i], info["points3D_id_to_2D"][j]
    common = list(tracks0.keys() & tracks1.keys())
    if not common:
        return float("inf")
    p0 = torch.tensor([tracks0[k] for k in common], dtype=torch.float64)
    p1 = torch.tensor([tracks1[k] for k in common], dtype=torch.float64)
    pose0, pose1 = (torch.from_numpy(np.asarray(info["poses"][k], np.float64).reshape(4, 4)) for k in (i, j))
    K0, K1 = (torch.from_numpy(np.asarray(info["intrinsics"][k], np.float64).reshape(3, 3)) for k in (i, j))
    F = fundamental_from_pose(K0, K1, pose1 @ torch.linalg.inv(pose0))
    return float(sampson_distance(p0, p1, F, squared=True).mean())


def scene_pairs(path: Path, scene: str, recipe: dict[str, Any], limit: int, seed: int) -> tuple[PosedPairIndex, int]:
    """(selected pairs of one scene, number of candidates before the Sampson check and the limit)."""
    keys = SCENE_INFO_KEYS + (("points3D_id_to_2D",) if recipe["max_sampson"] is not None else ())
    info = load_index_file(path, keys)
    i, j = candidate_pairs(
        info, path, recipe["min_overlap"], recipe["max_overlap"], recipe["max_scale_ratio"], recipe["aspect_range"]
    )
    rng = np.random.default_rng([seed, zlib.crc32(scene.encode())])
    chosen = []
    for k in rng.permutation(len(i)):
        if len(chosen) >= limit:
            break
        if recipe["max_sampson"] is None or mean_squared_sampson(info, i[k], j[k]) <= recipe["max_sampson"]:
            chosen.append(k)
    chosen = np.sort(np.array(chosen, dtype=np.int64))  # the draw decides which pairs, the file keeps scene_info order
    overlap = np.asarray(info["overlap_matrix"])[i[chosen], j[chosen]]
    return index_from_rows(info, i[chosen], j[chosen], overlap, scene, path), len(i)


def build_list(files: dict[str, Path], recipe: dict[str, Any], limit: int, seed: int, log=print) -> PosedPairIndex:
    """Concatenated per-scene selections; logs one line per scene."""
    parts = []
    for scene, path in files.items():
        index, candidates = scene_pairs(path, scene, recipe, limit, seed)
        log(f"scene {scene}: {candidates} candidate pairs, {len(index)} selected")
        parts.append(index)
    return concat(parts)


def overlap_histogram(index: PosedPairIndex) -> dict[str, int]:
    counts, _ = np.histogram(index.overlap, bins=OVERLAP_BINS)
    return {f"{lo:.2f}-{hi:.2f}": int(c) for lo, hi, c in zip(OVERLAP_BINS[:-1], OVERLAP_BINS[1:], counts)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m corrlab.data_pairs.megadepth_pairs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--root", type=Path, help="MegaDepth root (holding scene_info/); or give --scene-info-dir")
    p.add_argument("--scene-info-dir", type=Path, help="default <root>/scene_info")
    p.add_argument("--out", type=Path, required=True, help="output folder for train.npz and val.npz")
    p.add_argument("--min-overlap", type=float, default=0.35)
    p.add_argument("--max-overlap", type=float, default=1.0, help="exclusive")
    p.add_argument("--max-scale-ratio", type=float, default=float("inf"))
    p.add_argument("--aspect-range", type=float, nargs=2, default=[1.3, 1.7], metavar=("MIN", "MAX"))
    p.add_argument("--no-aspect-filter", action="store_true", help="keep portrait and any aspect ratio")
    p.add_argument(
        "--max-sampson", type=float, default=1.0, help="mean squared Sampson distance, px^2 (negative: no check)"
    )
    p.add_argument("--pairs-per-scene", type=int, default=500)
    p.add_argument("--exclude-scenes", nargs="*", default=list(PATCH2PIX_TEST_SCENES))
    p.add_argument("--val-scenes", nargs="*", default=None, help="default: the excluded scenes")
    p.add_argument("--val-pairs-per-scene", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    return p


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    scene_info_dir = args.scene_info_dir or (args.root / "scene_info" if args.root else None)
    if scene_info_dir is None or not scene_info_dir.is_dir():
        raise FileNotFoundError(
            f"no scene_info folder at '{scene_info_dir}': give --root <MegaDepth root> or --scene-info-dir "
            "(D2-Net scene_info/<scene>.npz files; `corrlab-data info megadepth` says where to get them)"
        )
    files = {p.name.split(".")[0]: p for p in sorted(scene_info_dir.glob("*.npz"))}
    if not files:
        raise FileNotFoundError(f"no <scene>.npz files in {scene_info_dir}")
    recipe = {
        "min_overlap": args.min_overlap,
        "max_overlap": args.max_overlap,
        "max_scale_ratio": args.max_scale_ratio,
        "aspect_range": None if args.no_aspect_filter else list(args.aspect_range),
        "max_sampson": None if args.max_sampson < 0 else args.max_sampson,
    }
    val_scenes = list(args.exclude_scenes if args.val_scenes is None else args.val_scenes)
    excluded = set(args.exclude_scenes) | set(val_scenes)
    train = build_list({s: p for s, p in files.items() if s not in excluded}, recipe, args.pairs_per_scene, args.seed)
    val = build_list({s: p for s, p in files.items() if s in val_scenes}, recipe, args.val_pairs_per_scene, args.seed)
    source = {"scene_info_dir": str(scene_info_dir), "seed": args.seed, "recipe": recipe}
    summary = {}
    for split, index, limit in (("train", train, args.pairs_per_scene), ("val", val, args.val_pairs_per_scene)):
        if len(index) == 0:
            print(f"{split}: no pairs (scenes: {'none present' if split == 'val' else 'none left'}); nothing written")
            continue
        meta = {
            **source,
            "split": split,
            "pairs_per_scene": limit,
            "excluded_scenes": sorted(excluded) if split == "train" else [],
            "scenes": sorted(set(index.scenes.tolist())),
        }
        path = save_pair_list(args.out / f"{split}.npz", index, meta)
        summary[split] = {
            "path": str(path),
            "pairs": len(index),
            "scenes": len(meta["scenes"]),
            "overlap_histogram": overlap_histogram(index),
        }
    print(json.dumps(summary, indent=2))
    return summary


def main() -> int:
    try:
        run()
    except (FileNotFoundError, UnreadableFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
