"""R2D2 extraction, naver/r2d2's extract.py against ours, with the REAL weights on real HPatches images.

Needs a scratch export of naver/r2d2 OUTSIDE this repository (CC BY-NC-SA 3.0, never committed here),
with one CPU patch in extract.py's load_network: `torch.load(model_fn, map_location='cpu',
weights_only=False)` (the faster2d2 files hold a defaultdict, and torch >= 2.6 defaults to weights_only):

    git --git-dir=<mirror of naver/r2d2> archive HEAD extract.py nets tools | tar x -C /tmp/r2d2-ref
    python bench/r2d2_fidelity.py --reference /tmp/r2d2-ref --workdir /tmp/r2d2-fidelity
    python bench/r2d2_fidelity.py --reference /tmp/r2d2-ref --workdir /tmp/r2d2-small --max-size 384 --record

Both run as commands (`extract.py --gpu -1` and bench/r2d2_driver.py) on the same images (links in the
work folder, since both write `<image>.<tag>` beside them; --reuse keeps outputs already there).  Per
image: keypoint counts, whether keypoints (x, y, scale, in output order) and scores are identical, the
descriptors' max abs difference, the count in the authors' published HPatches cache (naver/r2d2
`results/`, default sizes only).  Per pair: mutual-NN matches and MMA@1/3/5 by the D2-Net notebook's
formulas (written here in numpy) on each side's outputs, and the published match count.  Then the
CPU seconds (user + system) of each command.  --record prints the values tests/test_r2d2_real.py holds.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PAIRS_DIR = SHARED / "hpatches" / "partial_pairs"
PAIRS = (
    ("v_adam", "1.ppm", "3.ppm", "H_1_3"),
    ("v_boat", "1.png", "2.png", "H_1_2"),
    ("v_calder", "1.ppm", "4.ppm", "H_1_4"),
)
CACHE = SHARED / "reference_results" / "r2d2_hpatches" / "{model}.size-256-1024.npy"
CSV = SHARED / "hpatches" / "glunet_csv" / "hpatches_1_2.csv"  # lists the 59 viewpoint sequence names
LARGE = {"v_artisans", "v_astronautis", "v_talent"}
NUM_ILLUMINATION = 52  # sequences before the viewpoint ones in the cache's sorted order (57 minus 5 large)


def published(model: str) -> tuple[dict[str, int], dict[str, int]]:
    """n_feats ('v_adam/3') and n_matches ('v_adam/1-3') of the published cache (6 and 5 per sequence)."""
    path = Path(str(CACHE).format(model=model))
    if not path.is_file():
        return {}, {}
    _, n_feats, n_matches = np.load(path, allow_pickle=True)[2]
    names = sorted({line.split(",")[0] for line in CSV.read_text().splitlines()[1:]} - LARGE)
    feats, matches = {}, {}
    for index, name in enumerate(names):
        sequence = NUM_ILLUMINATION + index
        for k in range(1, 7):
            feats[f"{name}/{k}"] = int(n_feats[sequence * 6 + k - 1])
        for k in range(2, 7):
            matches[f"{name}/1-{k}"] = int(n_matches[sequence * 5 + k - 2])
    return feats, matches


def d2net_pair(a: dict, b: dict, H: np.ndarray) -> tuple[int, list[float]]:
    """D2-Net notebook: mutual NN by dot product, then mean(dist <= t) of H-projected positions."""
    similarity = a["descriptors"] @ b["descriptors"].T
    nn12, nn21 = similarity.argmax(1), similarity.argmax(0)
    ids = np.arange(len(nn12))
    keep = nn21[nn12] == ids
    pos_a = np.concatenate([a["keypoints"][ids[keep], :2], np.ones((keep.sum(), 1))], axis=1)
    projected = (H @ pos_a.T).T
    dist = np.linalg.norm(b["keypoints"][nn12[keep], :2] - projected[:, :2] / projected[:, 2:], axis=1)
    return int(keep.sum()), [float(np.mean(dist <= t)) if len(dist) else 0.0 for t in (1, 3, 5)]


def run(command: list[str], cwd: Path) -> float:
    """Run a command; its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="scratch export of naver/r2d2")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "r2d2" / "r2d2_WASF_N16.pt")
    parser.add_argument("--workdir", type=Path, default=None, help="keeps the outputs (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="keep outputs already in --workdir")
    parser.add_argument("--min-size", type=int, default=256)
    parser.add_argument("--max-size", type=int, default=1024)
    parser.add_argument("--streamed", action="store_true", help="our side with model.streamed=true")
    parser.add_argument("--record", action="store_true", help="print the values the real-weight test holds")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="r2d2-fidelity-"))
    workdir.mkdir(parents=True, exist_ok=True)
    names = [f"{sequence}/{image}" for sequence, *images, _ in PAIRS for image in images]
    links = []
    for name in names:
        link = workdir / name.replace("/", "_")
        if not link.exists():
            link.symlink_to(PAIRS_DIR / name)
        links.append(link)
    sizes = ["--min-size", str(args.min_size), "--max-size", str(args.max_size)]
    seconds = {}
    for tag, command, cwd in (
        ("r2d2", [sys.executable, "extract.py", "--gpu", "-1"], args.reference),
        ("ours", [sys.executable, str(ROOT / "bench" / "r2d2_driver.py")], ROOT),
    ):
        todo = [str(link) for link in links if not (args.reuse and Path(f"{link}.{tag}").is_file())]
        extra = ["--streamed"] if tag == "ours" and args.streamed else []
        if todo:
            seconds[tag] = run(
                [*command, "--model", str(args.weights.resolve()), *sizes, *extra, "--images", *todo], cwd
            )
    default_sizes = (args.min_size, args.max_size) == (256, 1024)
    feats, matches = published(args.weights.stem) if default_sizes else ({}, {})
    outputs = {link: (np.load(f"{link}.r2d2"), np.load(f"{link}.ours")) for link in links}
    print(f"weights {args.weights.name}, min/max size {args.min_size}/{args.max_size}")
    print(f"{'image':<14}{'ref':>6}{'ours':>6}{'published':>10}  keypoints  scores  max|desc diff|")
    for name, link in zip(names, links, strict=True):
        ref, our = outputs[link]
        same = ref["keypoints"].shape == our["keypoints"].shape
        kpts = "equal" if same and np.array_equal(ref["keypoints"], our["keypoints"]) else "DIFFER"
        scores = "equal" if same and np.array_equal(ref["scores"], our["scores"]) else "DIFFER"
        diff = f"{np.abs(ref['descriptors'] - our['descriptors']).max():.2e}" if same else "-"
        key = name.rsplit(".", 1)[0]
        print(
            f"{key:<14}{len(ref['keypoints']):>6}{len(our['keypoints']):>6}{feats.get(key, '-'):>10}  {kpts:>9}  {scores:>6}  {diff}"
        )
    print(f"\n{'pair':<14}{'ref matches':>12}{'ours':>6}{'published':>10}  ref MMA@1/3/5       ours MMA@1/3/5")
    for sequence, first, second, homography in PAIRS:
        H = np.loadtxt(PAIRS_DIR / sequence / homography)
        a, b = (workdir / f"{sequence}_{image}" for image in (first, second))
        n_ref, mma_ref = d2net_pair(outputs[a][0], outputs[b][0], H)
        n_our, mma_our = d2net_pair(outputs[a][1], outputs[b][1], H)
        key = f"{sequence}/1-{second.split('.')[0]}"
        print(
            f"{key:<14}{n_ref:>12}{n_our:>6}{matches.get(key, '-'):>10}  "
            f"{' '.join(f'{m:.4f}' for m in mma_ref)}  {' '.join(f'{m:.4f}' for m in mma_our)}"
        )
    if seconds:
        print("\nCPU seconds: " + ", ".join(f"{tag} {s:.1f}" for tag, s in seconds.items()))
        if len(seconds) == 2:
            print(f"reference / ours = {seconds['r2d2'] / seconds['ours']:.2f}")
    if args.record:
        for name, link in zip(names, links, strict=True):
            ref = outputs[link][0]
            best = ref["keypoints"][-3:].round(4).tolist()
            print(
                f'"{name}": ({len(ref["keypoints"])}, {best}, {float(ref["scores"].sum()):.4f}, '
                f"{float(np.abs(ref['descriptors']).sum()):.3f}),"
            )


if __name__ == "__main__":
    main()
