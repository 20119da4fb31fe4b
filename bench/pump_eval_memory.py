"""PUMP through eval.py against its CLI at the same size: time and peak memory of one HPatches pair, same weights.

    python bench/pump_eval_memory.py --pair ../shared/data/hpatches/partial_pairs/v_boat --resize 512 --repeat 3

Both sides get the same random ConvMixer in the official format and the same two images; eval.py also loads
the benchmark, scores the pair and writes its run folder.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pump_matching import random_weights  # noqa: E402
from bench.runner import Case, run_cases  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", type=Path, default=ROOT.parent / "shared/data/hpatches/partial_pairs/v_boat")
    parser.add_argument("--resize", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pump_eval_memory_"))
    root = work / "hpatches"
    shutil.copytree(args.pair, root / args.pair.name)  # a one-sequence HPatches root
    images = sorted(p for p in (root / args.pair.name).iterdir() if p.suffix in (".png", ".ppm"))
    weights = work / "random_pump.pt"
    random_weights(weights)
    python = sys.executable
    cli = (
        f"{python} -m corrlab.models.pump.cli --img1 {images[0]} --img2 {images[1]} --resize {args.resize} "
        f"--weights {weights} --output {work / 'cli.npz'}"
    )
    evaluate = (
        f"{python} {ROOT / 'eval.py'} model=pump data=hpatches data.root={root} weights={weights} "
        f"model.matching.resize={args.resize} num_figures=0 hydra.run.dir={work / 'eval_run'}"
    )
    run_cases(
        [Case("cli", cli, cwd=str(ROOT)), Case("eval.py", evaluate, cwd=str(ROOT))], baseline="cli", repeat=args.repeat
    )


if __name__ == "__main__":
    main()
