"""GeoAware-SC evaluation from the same cache: ours (eval pipeline, per-image descriptor cache, query rows only)
vs the reference's pck_train.eval, on real-image SPair pairs with image reuse (every ordered pair of `--images`
views of one photo, tests/helpers/real_spair.py), each run in its own process (wall time, peak RSS), 1 thread
each, interleaved, median of `--repeats`.  Needs the reference's scratch copy of bench/geoaware_fidelity.py.

    python bench/geoaware_eval_speed.py [--scratch /tmp/geoaware-ref] [--repeats 3] [--images 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.peak_memory import peak_rss_mb  # noqa: E402

SETTINGS = ("supervised_soft7",)


def ours(run: Path, setting: str) -> dict:
    """One evaluation with our pipeline (in this process): seconds of the evaluation and peak RSS."""
    import torch

    from bench.geoaware_fidelity import SETTINGS as OURS
    from bench.geoaware_fidelity import our_pck

    torch.set_num_threads(1)
    start = time.perf_counter()
    our_pck(run / "data" / "SPair-71k", run / "random_official.PTH", OURS[setting], run / "ours")
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure(command: list[str], out: Path | None, cwd: Path) -> dict:
    result = subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    return json.loads(out.read_text() if out else result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/geoaware-ref"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--images", type=int, default=3, help="views of the cat photo; every ordered pair is a test pair"
    )
    parser.add_argument("--ours", type=Path, default=None, help=argparse.SUPPRESS)  # internal: one run of ours
    parser.add_argument("--setting", default=SETTINGS[0], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours:
        print(json.dumps(ours(args.ours, args.setting)))
        return
    from bench.geoaware_fidelity import write_inputs

    src = args.scratch / "src"
    if not (src / "pck_train.py").is_file():
        raise SystemExit(f"{src} has no reference copy: run bench/geoaware_fidelity.py first")
    run = args.scratch / f"speed_{args.images}"
    pairs = tuple((i, j) for i in range(args.images) for j in range(args.images) if i != j)
    if not (run / "random_official.PTH").is_file():
        write_inputs(run, pairs=pairs, categories=("cat",))
    driver = ROOT / "bench" / "geoaware_reference_driver.py"
    report = {}
    for setting in SETTINGS:
        rows = {"ours": [], "reference": []}
        for repeat in range(args.repeats):
            out = run / "speed.json"
            ref_cmd = [sys.executable, str(driver), str(src), str(args.scratch / "stubs")]
            ref_cmd += [str(run / "random_official.PTH"), str(out), f"speed:{setting}"]
            our_cmd = [sys.executable, str(Path(__file__).resolve()), "--ours", str(run), "--setting", setting]
            for side in ("reference", "ours") if repeat % 2 == 0 else ("ours", "reference"):
                rows[side].append(measure(ref_cmd, out, run) if side == "reference" else measure(our_cmd, None, ROOT))
        med = {side: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for side, runs in rows.items()}
        report[setting] = {
            **med,
            "speedup": med["reference"]["seconds"] / med["ours"]["seconds"],
            "memory_ratio": med["ours"]["peak_rss_mb"] / med["reference"]["peak_rss_mb"],
            "pairs": len(pairs),
            "images": args.images,
            "runs": rows,
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
