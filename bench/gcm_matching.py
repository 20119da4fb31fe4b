"""GCM matching cost, ours vs the reference, side by side in one run: CPU seconds and whole-process peak RSS (VmHWM;
medians of --repeats interleaved rounds) for one pair, each side in its own fresh process: the reference (from the
scratch copy bench/gcm_fidelity.py sets up in /tmp/gcm-ref), corrlab with `model.reference_compatible=true` (exact
full-resolution passes) and corrlab's default (mended, folded trunk), both through the eval path (the Lightning
module built by the instantiate pipeline, with eval.py's process settings: Triton left unloaded, freed blocks
returned to the OS), and the default through the lean path (`GCMMatcher` +
`load_student`, what a user's own script needs: no Lightning import).

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
import json, sys, time, numpy as np
from PIL import Image
side, name, folder, a, b, weights, repeats, compatible, repo = sys.argv[1:10]
sys.path.append(repo)
from bench.peak_memory import peak_rss_mb
A, B = np.array(Image.open(f"{folder}/{a}")), np.array(Image.open(f"{folder}/{b}"))
if side == "reference":
    import os, yaml
    sys.path.insert(0, os.getcwd())
    from DeepFeatureMatcher import DeepFeatureMatcher
    matcher = DeepFeatureMatcher(**yaml.safe_load(open(f"configs/{name}.yml")))
    run = lambda: matcher.match(A, B)[2].shape[1]
elif side == "corrlab_lean":
    import yaml
    from corrlab.models.gcm.matcher import GCMMatcher
    from corrlab.models.gcm.official import load_student
    config = yaml.safe_load(open(f"conf/model/gcm/{name}.yaml"))
    matcher = GCMMatcher(config["backbone"], config["ratio_th"], config["fine"], config["fine_ratio"]).eval()
    load_student(matcher.backbone.net, weights)
    run = lambda: len(matcher.match(A, B).points_a)
else:
    from corrlab.pipeline.memory import leave_triton_unloaded, return_freed_memory
    leave_triton_unloaded()  # eval.py's process settings (corrlab.pipeline.cli), before the imports
    return_freed_memory()
    from corrlab.modules.gcm import GCM
    from tests.conftest import compose_config
    from corrlab.pipeline.instantiate import instantiate_method
    from pathlib import Path
    overrides = ["model=gcm", f"model/gcm={name}", f"model.reference_compatible={compatible}"]
    cfg = compose_config("eval", overrides, Path("/tmp/gcm-bench-cfg"))
    module = instantiate_method(cfg.model).eval()
    module.load_official(weights)
    run = lambda: len(module.matcher.match(A, B).points_a)
times = []
for _ in range(int(repeats)):
    start = time.process_time()
    count = run()
    times.append(time.process_time() - start)
print(json.dumps(dict(times=times, matches=count, peak_rss_mb=peak_rss_mb())))
"""


SIDES = {"reference": "", "corrlab_compatible": "true", "corrlab_default": "false", "corrlab_lean": "false"}


def run_side(side: str, config: str, pair: str, repeats: int, folder: Path) -> dict:
    seq, a, b, _ = next(p for p in PAIRS if p[0] == pair)
    name = REFERENCE_NAMES[config] if side == "reference" else config
    weights = DATA / "weights" / "gcm" / "dstl_r2d2.pt"
    repo = Path(__file__).resolve().parents[1]
    cwd = folder if side == "reference" else repo
    folder_images = str(DATA / "hpatches" / "partial_pairs" / seq)
    args = [side, name, folder_images, a, b, str(weights), str(repeats), SIDES[side], str(repo)]
    out = subprocess.run([sys.executable, "-c", SIDE, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="avg_r2d2_95", choices=["avg_r2d2_95", "avg_r2d2_6"])
    parser.add_argument("--pair", default="v_calder", choices=[p[0] for p in PAIRS])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/gcm-ref"))
    args = parser.parse_args()
    sides = {side: {"times": [], "peak_rss_mb_rounds": []} for side in SIDES}
    for _ in range(args.repeats):  # interleaved pairs of fresh processes (the machine's load drifts)
        for side, result in sides.items():
            run = run_side(side, args.config, args.pair, 1, args.folder)
            result["times"] += run["times"]
            result["peak_rss_mb_rounds"].append(run["peak_rss_mb"])
            result["matches"] = run["matches"]
    for result in sides.values():
        result["median_cpu_s"] = statistics.median(result["times"])
        result["peak_rss_mb"] = statistics.median(result["peak_rss_mb_rounds"])
    reference = sides["reference"]
    for side in ("corrlab_compatible", "corrlab_default", "corrlab_lean"):
        sides[side]["speedup_vs_reference"] = reference["median_cpu_s"] / sides[side]["median_cpu_s"]
        sides[side]["memory_vs_reference"] = sides[side]["peak_rss_mb"] / reference["peak_rss_mb"]
    print(json.dumps(sides, indent=1))


if __name__ == "__main__":
    main()
