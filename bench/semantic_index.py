"""Building the SPair-71k training index: corrlab's lazy index (pair names only, annotations parsed per item)
against eager loading of every pair JSON at start-up (what DenseMatching's SPair dataset does).

    python -m bench.semantic_index [--pairs 53340] [--repeat 3]

Writes a synthetic SPair layout (realistic pair JSONs, empty placeholder images) under /tmp once.  Each case
runs in a fresh process after the same imports and reports the index-building time and the growth of the
process's peak RSS while building (imports excluded).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path("/tmp/corrlab_bench_spair")


def prepare(root: Path, pairs: int) -> None:
    """Layout/large/trn.txt, PairAnnotation/trn/*.json and 1,800 placeholder images over 18 categories."""
    marker = root / f".ready_{pairs}"
    if marker.is_file():
        return
    rng = np.random.default_rng(0)
    names = []
    (root / "PairAnnotation" / "trn").mkdir(parents=True, exist_ok=True)
    for index in range(pairs):
        category = f"category{index % 18:02d}"
        source, target = (f"2010_{100 * (index % 18) + int(i):06d}" for i in rng.integers(0, 100, 2))
        name = f"{index:06d}-{source}-{target}:{category}"
        n = int(rng.integers(3, 20))
        record = {
            "pair_id": index,
            "src_imname": f"{source}.jpg",
            "trg_imname": f"{target}.jpg",
            "src_imsize": [500, 375, 3],
            "trg_imsize": [500, 333, 3],
            "src_bndbox": [10, 20, 300, 250],
            "trg_bndbox": [30, 40, 400, 300],
            "category": category,
            "src_pose": "Frontal",
            "trg_pose": "Left",
            "src_kps": rng.integers(0, 300, (n, 2)).tolist(),
            "trg_kps": rng.integers(0, 300, (n, 2)).tolist(),
            "kps_ids": [str(i) for i in sorted(rng.choice(30, n, replace=False))],
            "mirror": 0,
            "viewpoint_variation": 1,
            "scale_variation": 0,
            "truncation": 0,
            "occlusion": 0,
        }
        (root / "PairAnnotation" / "trn" / f"{name}.json").write_text(json.dumps(record))
        names.append(name)
        for image in (source, target):
            path = root / "JPEGImages" / category / f"{image}.jpg"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
    (root / "Layout" / "large").mkdir(parents=True, exist_ok=True)
    (root / "Layout" / "large" / "trn.txt").write_text("".join(f"{n}\n" for n in names))
    marker.touch()


def lazy(root: Path) -> int:
    from corrlab.datamodules.spair import SPairDataModule

    return len(SPairDataModule(root=str(root)).dataset("train"))


def eager(root: Path) -> int:
    """Every pair JSON parsed into tensors up front (the reference behaviour)."""
    import torch

    names = (root / "Layout" / "large" / "trn.txt").read_text().split()
    records = [json.loads((root / "PairAnnotation" / "trn" / f"{n}.json").read_text()) for n in names]
    kps = [(torch.tensor(r["src_kps"]).t().float(), torch.tensor(r["trg_kps"]).t().float()) for r in records]
    boxes = [(torch.tensor(r["src_bndbox"]).float(), torch.tensor(r["trg_bndbox"]).float()) for r in records]
    flags = [
        [torch.tensor(r[k]) for k in ("viewpoint_variation", "scale_variation", "truncation", "occlusion")]
        for r in records
    ]
    return min(len(kps), len(boxes), len(flags))


def measure(case: str) -> None:
    """Run one case after the shared imports; print its build time and peak-RSS growth as JSON."""
    import torch  # noqa: F401  the imports both cases share

    import corrlab.datamodules.spair  # noqa: F401

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    count = {"lazy": lazy, "eager": eager}[case](ROOT)
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"pairs": count, "seconds": seconds, "peak_rss_growth_mb": grown}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=53340, help="SPair-71k has 53,340 training pairs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=("lazy", "eager"))
    args = parser.parse_args()
    if args.case:
        measure(args.case)
        return
    prepare(ROOT, args.pairs)
    results = {}
    for case in ("eager", "lazy"):
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, "-m", "bench.semantic_index", "--case", case],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.splitlines()[-1]
            )
            for _ in range(args.repeat)
        ]
        results[case] = {k: statistics.median(r[k] for r in runs) for k in ("pairs", "seconds", "peak_rss_growth_mb")}
    print(f"index of {args.pairs} pairs, median of {args.repeat} fresh processes")
    for case, r in results.items():
        print(f"  {case:5s}: {r['seconds']:7.2f} s   peak RSS +{r['peak_rss_growth_mb']:7.1f} MB")
    slow, fast = results["eager"], results["lazy"]
    speed = slow["seconds"] / fast["seconds"]
    memory = slow["peak_rss_growth_mb"] / max(fast["peak_rss_growth_mb"], 0.1)
    print(f"  lazy vs eager: {speed:.1f}x faster, {memory:.1f}x less memory")


if __name__ == "__main__":
    main()
