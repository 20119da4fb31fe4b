"""R2D2 extraction, naver/r2d2's extract.py against ours, with the REAL weights on real HPatches images.

Needs a scratch export of naver/r2d2 OUTSIDE this repository (CC BY-NC-SA 3.0, never committed here),
with one CPU patch in extract.py's load_network: `torch.load(model_fn, map_location='cpu',
weights_only=False)` (the faster2d2 files hold a defaultdict, and torch >= 2.6 defaults to weights_only):

    git --git-dir=<mirror of naver/r2d2> archive HEAD extract.py nets tools | tar x -C /tmp/r2d2-ref
    python bench/r2d2_fidelity.py --reference /tmp/r2d2-ref --weights ../shared/data/weights/r2d2/r2d2_WASF_N16.pt

Both run as commands (`extract.py --gpu -1` and bench/r2d2_driver.py) on the same images (links in a
temporary folder, since both write `<image>.<tag>` beside it).  Per image it prints the keypoint counts,
whether the keypoints (x, y, scale, in output order) and scores are identical, the descriptors' max abs
difference, and the count in the authors' published HPatches cache (naver/r2d2 `results/`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PAIRS = SHARED / "hpatches" / "partial_pairs"
IMAGES = ("v_adam/1.ppm", "v_adam/3.ppm", "v_boat/1.png", "v_boat/2.png", "v_calder/1.ppm", "v_calder/4.ppm")
CACHE = SHARED / "reference_results" / "r2d2_hpatches" / "{model}.size-256-1024.npy"
CSV = SHARED / "hpatches" / "glunet_csv" / "hpatches_1_2.csv"  # lists the 59 viewpoint sequence names
LARGE = {"v_artisans", "v_astronautis", "v_talent"}
NUM_ILLUMINATION = 52  # sequences before the viewpoint ones in the cache's sorted order (57 minus 5 large)


def published_counts(model: str) -> dict[str, int]:
    """'v_adam/3' -> n_feats in the published cache (6 entries per sequence, images 1..6)."""
    path = Path(str(CACHE).format(model=model))
    if not path.is_file():
        return {}
    n_feats = np.load(path, allow_pickle=True)[2][1]
    names = sorted({line.split(",")[0] for line in CSV.read_text().splitlines()[1:]} - LARGE)
    return {
        f"{name}/{k}": int(n_feats[(NUM_ILLUMINATION + index) * 6 + k - 1])
        for index, name in enumerate(names)
        for k in range(1, 7)
    }


def run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="scratch export of naver/r2d2")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "r2d2" / "r2d2_WASF_N16.pt")
    parser.add_argument("--images", nargs="+", default=list(IMAGES), help="paths under hpatches/partial_pairs")
    parser.add_argument("--channels-last", action="store_true", help="our side in channels-last")
    args = parser.parse_args()
    published = published_counts(args.weights.stem)
    with tempfile.TemporaryDirectory(prefix="r2d2-fidelity-") as folder:
        links = []
        for name in args.images:
            link = Path(folder) / name.replace("/", "_")
            link.symlink_to(PAIRS / name)
            links.append(str(link))
        run(
            [sys.executable, "extract.py", "--model", str(args.weights.resolve()), "--gpu", "-1", "--images", *links],
            args.reference,
        )
        ours = [
            sys.executable,
            str(ROOT / "bench" / "r2d2_driver.py"),
            "--model",
            str(args.weights),
            "--images",
            *links,
        ]
        run(ours + (["--channels-last"] if args.channels_last else []), ROOT)
        print(f"weights {args.weights.name}")
        print(f"{'image':<16}{'ref':>6}{'ours':>6}{'published':>10}  keypoints  scores  max|desc diff|")
        for name, link in zip(args.images, links, strict=True):
            ref, our = np.load(f"{link}.r2d2"), np.load(f"{link}.ours")
            same_shape = ref["keypoints"].shape == our["keypoints"].shape
            same_kpts = same_shape and np.array_equal(ref["keypoints"], our["keypoints"])
            same_scores = same_shape and np.array_equal(ref["scores"], our["scores"])
            diff = np.abs(ref["descriptors"] - our["descriptors"]).max() if same_shape else float("nan")
            key = name.rsplit(".", 1)[0]
            print(
                f"{key:<16}{len(ref['keypoints']):>6}{len(our['keypoints']):>6}{published.get(key, '-'):>10}"
                f"  {'equal' if same_kpts else 'DIFFER':>9}  {'equal' if same_scores else 'DIFFER':>6}  {diff:.2e}"
            )


if __name__ == "__main__":
    main()
