"""GCM matching cost, ours vs the reference, side by side in one run: CPU seconds and whole-process peak RSS (medians
of --repeats interleaved pairs) for one pair, each side in its own fresh process (the reference from the scratch copy bench/gcm_fidelity.py
sets up in /tmp/gcm-ref).

  python -m bench.gcm_matching --config avg_r2d2_95 --pair v_calder --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.gcm_fidelity import DATA, PAIRS, REFERENCE_NAMES

SIDE = """
import json, resource, sys, time, numpy as np
from PIL import Image
side, name, folder, a, b, weights, repeats = sys.argv[1:8]
A, B = np.array(Image.open(f"{folder}/{a}")), np.array(Image.open(f"{folder}/{b}"))
if side == "reference":
    import os, yaml
    sys.path.insert(0, os.getcwd())
    from DeepFeatureMatcher import DeepFeatureMatcher
    matcher = DeepFeatureMatcher(**yaml.safe_load(open(f"configs/{name}.yml")))
    run = lambda: matcher.match(A, B)[2].shape[1]
else:
    from corrlab.modules.gcm import GCM
    from tests.conftest import compose_config
    from corrlab.pipeline.instantiate import instantiate_method
    from pathlib import Path
    cfg = compose_config("eval", ["model=gcm", f"model/gcm={name}", "model.reference_compatible=true"], Path("/tmp/gcm-bench-cfg"))
    module = instantiate_method(cfg.model).eval()
    module.load_official(weights)
    run = lambda: len(module.matcher.match(A, B).points_a)
times = []
for _ in range(int(repeats)):
    start = time.process_time()
    count = run()
    times.append(time.process_time() - start)
print(json.dumps(dict(times=times, matches=count, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def run_side(side: str, config: str, pair: str, repeats: int, folder: Path) -> dict:
    seq, a, b, _ = next(p for p in PAIRS if p[0] == pair)
    name = REFERENCE_NAMES[config] if side == "reference" else config
    weights = DATA / "weights" / "gcm" / "dstl_r2d2.pt"
    cwd = folder if side == "reference" else Path(__file__).resolve().parents[1]
    args = [side, name, str(DATA / "hpatches" / "partial_pairs" / seq), a, b, str(weights), str(repeats)]
    out = subprocess.run([sys.executable, "-c", SIDE, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="avg_r2d2_95", choices=["avg_r2d2_95", "avg_r2d2_6"])
    parser.add_argument("--pair", default="v_calder", choices=[p[0] for p in PAIRS])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/gcm-ref"))
    args = parser.parse_args()
    sides = {"reference": {"times": [], "peak_rss_mb": []}, "corrlab": {"times": [], "peak_rss_mb": []}}
    for _ in range(args.repeats):  # interleaved pairs of fresh processes (the machine's load drifts)
        for side, result in sides.items():
            run = run_side(side, args.config, args.pair, 1, args.folder)
            result["times"] += run["times"]
            result["peak_rss_mb"].append(run["peak_rss_mb"])
            result["matches"] = run["matches"]
    for result in sides.values():
        result["median_cpu_s"] = statistics.median(result["times"])
        result["peak_rss_mb"] = statistics.median(result["peak_rss_mb"])
    ratio = sides["reference"]["median_cpu_s"] / sides["corrlab"]["median_cpu_s"]
    memory = sides["corrlab"]["peak_rss_mb"] / sides["reference"]["peak_rss_mb"]
    print(json.dumps({**sides, "speedup": ratio, "memory_ratio": memory}, indent=1))


if __name__ == "__main__":
    main()
