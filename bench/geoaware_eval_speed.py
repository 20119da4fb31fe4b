"""GeoAware-SC evaluation from the same cache: ours (eval pipeline, per-image descriptor cache, query rows only)
vs the reference's pck_train.eval, each setting in its own process (wall time, peak RSS), 1 thread each.
Needs the scratch folder of bench/geoaware_fidelity.py (run it first).

    python bench/geoaware_eval_speed.py [--scratch /tmp/geoaware-ref] [--repeats 3]
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

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("supervised_soft7", "zero_shot_soft5_flip")


def ours(scratch: Path, setting: str) -> dict:
    """One evaluation with our pipeline (in this process): seconds of the evaluation and peak RSS."""
    import torch

    sys.path.insert(0, str(ROOT))
    from bench.geoaware_fidelity import SETTINGS as OURS
    from bench.geoaware_fidelity import our_pck

    torch.set_num_threads(1)
    run = scratch / "run"
    start = time.perf_counter()
    our_pck(run / "data" / "SPair-71k", run / "random_official.PTH", OURS[setting], run / "speed")
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(command: list[str], out: Path | None, cwd: Path) -> dict:
    result = subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    return json.loads(out.read_text() if out else result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/geoaware-ref"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours", default=None, help=argparse.SUPPRESS)  # internal: one run of ours
    args = parser.parse_args()
    if args.ours:
        print(json.dumps(ours(args.scratch, args.ours)))
        return
    run = args.scratch / "run"
    if not (run / "random_official.PTH").is_file():
        raise SystemExit(f"{run} has no inputs: run bench/geoaware_fidelity.py first")
    driver = ROOT / "bench" / "geoaware_reference_driver.py"
    report = {}
    for setting in SETTINGS:
        rows = {"ours": [], "reference": []}
        for _ in range(args.repeats):
            out = run / "speed.json"
            ref_cmd = [sys.executable, str(driver), str(args.scratch / "src"), str(args.scratch / "stubs")]
            ref_cmd += [str(run / "random_official.PTH"), str(out), f"speed:{setting}"]
            rows["reference"].append(measure(ref_cmd, out, run))
            our_cmd = [sys.executable, str(Path(__file__).resolve()), "--scratch", str(args.scratch), "--ours", setting]
            rows["ours"].append(measure(our_cmd, None, ROOT))
        med = {side: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for side, runs in rows.items()}
        report[setting] = {
            **med,
            "speedup": med["reference"]["seconds"] / med["ours"]["seconds"],
            "pairs": 2,
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
