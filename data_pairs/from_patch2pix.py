"""Convert Patch2Pix's released MegaDepth pair file to corrlab's pair-list format (the exact published pairs).

    python -m corrlab.data_pairs.from_patch2pix megadepth_pairs.ov0.35_imrat1.5.pair500.excl_test.npy --out train.npz

The released file (Patch2Pix data_pairs/download.sh; 60,661 pairs in 160 scenes) is an np.save'd dict
{scene: {'ims': [...], 'pairs': [Namespace(im1, im2, overlap, K1, K2, R, t, q, crop1, crop2)]}} with
image names relative to MegaDepth_undistort/ ('<scene>/images/<f>.jpg').  Names become root-relative
D2-Net paths (Undistorted_SfM/<scene>/images/<f>.jpg), T_0to1 = [R | t] (camera 1 -> camera 2, as
Patch2Pix's abs2relapose), depth paths the D2-Net phoenix/.../dense0/depths/<f>.h5.  The pickle is read by
a restricted unpickler (numpy arrays, builtin values and argparse.Namespace only), so it runs no code.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path, PurePosixPath

import numpy as np

from corrlab.datamodules.errors import UnreadableFileError
from corrlab.datamodules.posed_index import PosedPairIndex, save_pair_list
from corrlab.safe_loading import NAMESPACE_GLOBALS, read_npy

DEPTH_TEMPLATE = "phoenix/S6/zl548/MegaDepth_v1/{scene}/dense0/depths/{stem}.h5"


def load_patch2pix_pairs(path: str | Path) -> PosedPairIndex:
    """The pairs of a Patch2Pix pair file as a PosedPairIndex (cameras per pair)."""
    path = Path(path)
    try:
        content = read_npy(path.read_bytes(), path, extra=NAMESPACE_GLOBALS).item()  # builds no other objects
        scenes = {str(scene): content[scene]["pairs"] for scene in sorted(content)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, pickle.UnpicklingError) as error:
        raise UnreadableFileError(path, f"not a Patch2Pix pair file ({type(error).__name__}: {error})") from error
    images: dict[str, int] = {}
    image_scenes: list[str] = []
    rows, overlap, K0, K1, T = [], [], [], [], []
    for scene, pairs in scenes.items():
        for number, pair in enumerate(pairs):
            try:
                names = (f"Undistorted_SfM/{pair.im1}", f"Undistorted_SfM/{pair.im2}")
                pose = np.eye(4)
                pose[:3, :3], pose[:3, 3] = np.asarray(pair.R, np.float64), np.asarray(pair.t, np.float64).reshape(3)
                cameras = (np.asarray(pair.K1, np.float64).reshape(3, 3), np.asarray(pair.K2, np.float64).reshape(3, 3))
            except (AttributeError, ValueError) as error:
                raise UnreadableFileError(path, f"scene {scene} pair {number}: {error}") from error
            for name in names:
                if name not in images:
                    images[name] = len(images)
                    image_scenes.append(scene)
            rows.append((images[names[0]], images[names[1]]))
            overlap.append(float(pair.overlap))
            K0.append(cameras[0])
            K1.append(cameras[1])
            T.append(pose)
    names = list(images)
    depths = [DEPTH_TEMPLATE.format(scene=s, stem=PurePosixPath(n).stem) for n, s in zip(names, image_scenes)]
    return PosedPairIndex(
        images=np.array(names, dtype=str),
        depths=np.array(depths, dtype=str),
        scenes=np.array(image_scenes, dtype=str),
        pairs=np.array(rows, np.int64).reshape(-1, 2),
        overlap=np.array(overlap, np.float64),
        K0=np.array(K0).reshape(-1, 3, 3),
        K1=np.array(K1).reshape(-1, 3, 3),
        T_0to1=np.array(T).reshape(-1, 4, 4),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m corrlab.data_pairs.from_patch2pix",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", type=Path, help="Patch2Pix's megadepth_pairs.*.npy")
    parser.add_argument("--out", type=Path, required=True, help="output .npz pair list")
    args = parser.parse_args(argv)
    try:
        index = load_patch2pix_pairs(args.source)
    except (UnreadableFileError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    scenes = sorted(set(index.scenes.tolist()))
    save_pair_list(
        args.out, index, {"source": f"Patch2Pix pair file {args.source.name}", "split": "train", "scenes": scenes}
    )
    print(json.dumps({"path": str(args.out), "pairs": len(index), "scenes": len(scenes)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
