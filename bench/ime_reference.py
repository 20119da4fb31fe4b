"""benchmark=hpatches_ime side by side with IME's own evaluation script (ufukefe/IME
utils/Datasets/HPatches/eval_hpatches.py, the one GCM and DFM report with), on the same SIFT matches.

    python -m bench.ime_reference --ime-eval <IME checkout>/utils/Datasets/HPatches/eval_hpatches.py --out /tmp/ime_run

It lays out HPatches pairs as IME's organizer does (the real pairs of ../shared/data/hpatches/partial_pairs plus the
tests' synthetic sequences), matches every pair once with our SIFT, scores the matches with hpatches_ime (quirks on
and off), writes them in IME's npz format and runs IME's script on them.  The reference runs unmodified except
that its final pandas CSV writing is replaced by a JSON dump of the same aggregates (pandas is not installed here).
Prints both sets of numbers and their largest difference.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import OmegaConf

from corrlab.benchmarks.select import benchmark_factory
from corrlab.config.schema import CONFIG_DIR
from corrlab.datamodules.hpatches import HPatchesDataModule
from corrlab.pipeline.instantiate import instantiate_method

ROOT = Path(__file__).resolve().parents[1]
REAL_PAIRS = ROOT.parent / "shared" / "data" / "hpatches" / "partial_pairs"
PANDAS_BLOCK = re.compile(r"headers = \[header1, header2\].*?float_format='%.2f'\)", re.S)


def patched_reference(script: Path, out: Path) -> Path:
    """IME's script with `import pandas` dropped and each CSV block replaced by a JSON dump of alg_results."""
    text = script.read_text().replace("import pandas as pd\n", "import json\n")
    parts = PANDAS_BLOCK.split(text)
    if len(parts) != 3:
        raise RuntimeError(f"{script}: expected two pandas CSV blocks, found {len(parts) - 1}")
    dumps = [
        f"json.dump(alg_results, open(result_directory + '/{name}.json', 'w'), default=float)"
        for name in ("mma", "homography")
    ]
    path = out / "eval_hpatches_json.py"
    path.write_text(parts[0] + dumps[0] + parts[1] + dumps[1] + parts[2])
    return path


def ime_layout(out: Path) -> Path:
    """hpatches/{illumination,viewpoint}/<seq>/<seq>_k.ppm + <seq>_H_1_k + image_pairs.txt (IME's organizer)."""
    sys.path.insert(0, str(ROOT))
    from tests.helpers.hpatches_fixture import write_hpatches

    sources = [REAL_PAIRS, write_hpatches(out / "fixture_release", num_images=6)]
    root = out / "hpatches"
    for source in sources:
        for sequence in sorted(p for p in source.iterdir() if p.is_dir() and p.name != "v_artisans"):
            group = "illumination" if sequence.name.startswith("i_") else "viewpoint"
            target = root / group / sequence.name
            target.mkdir(parents=True, exist_ok=True)
            for image in sequence.iterdir():
                if image.suffix in (".ppm", ".png"):
                    cv2.imwrite(str(target / f"{sequence.name}_{image.stem}.ppm"), cv2.imread(str(image)))
                elif image.name.startswith("H_1_"):
                    shutil.copy(image, target / f"{sequence.name}_{image.name}")
    lines = []
    for group in ("illumination", "viewpoint"):
        for sequence in sorted((root / group).iterdir()):
            for k in range(2, 7):
                if (sequence / f"{sequence.name}_H_1_{k}").is_file():
                    prefix = f"{group}/{sequence.name}/{sequence.name}"
                    lines.append(f"{prefix}_1.ppm {prefix}_{k}.ppm {prefix}_H_1_{k}")
    (root / "image_pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def ours(root: Path, results: Path) -> dict[str, dict[str, float]]:
    """SIFT on every pair once: hpatches_ime metrics with and without quirks; the matches saved for IME."""
    module = instantiate_method(OmegaConf.load(CONFIG_DIR / "model" / "sift.yaml")).eval()
    datamodule = HPatchesDataModule(root=str(root), benchmark=benchmark_factory("hpatches_ime"))
    benchmarks = {q: datamodule.make_benchmark("test") for q in (False, True)}
    benchmarks[True] = benchmark_factory("hpatches_ime")(data=datamodule.benchmark_data("test"), ime_quirks=True)
    with torch.inference_mode():
        for batch in datamodule.test_dataloader():
            matches = module.match(batch)
            for benchmark in benchmarks.values():
                benchmark.update(batch, matches)
            sequence, pair = batch["name"][0].split("/")
            group = "illumination" if sequence.startswith("i_") else "viewpoint"
            folder = results / "hpatches" / "sift" / "outputs" / group / sequence
            folder.mkdir(parents=True, exist_ok=True)
            n = len(matches)
            np.savez(
                folder / f"{sequence}_1_{sequence}_{pair.split('-')[1]}_matches.npz",
                pointsA=matches.kpts0.double().numpy(),
                pointsB=matches.kpts1.double().numpy(),
                matches=np.stack([np.arange(n), np.arange(n)], axis=1),
            )
    return {("quirks" if q else "no_quirks"): b.compute() for q, b in benchmarks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ime-eval", type=Path, required=True, help="IME's utils/Datasets/HPatches/eval_hpatches.py")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    root = ime_layout(args.out)
    results = args.out / "Results"
    mine = ours(root, results)
    script = patched_reference(args.ime_eval, args.out)
    command = [sys.executable, str(script), "--algorithms", "sift", "--dataset_name", "hpatches"]
    subprocess.run([*command, "--result_directory", str(results), "--dataset_dir", str(root)], check=True)
    mma = json.loads((results / "mma.json").read_text())["sift"]
    homography = json.loads((results / "homography.json").read_text())["sift"]
    rows, worst = [], 0.0
    for label, prefix, key in (
        ("all", "", "all"),
        ("illumination", "i/", "illumination"),
        ("viewpoint", "v/", "viewpoint"),
    ):
        reference_mma = (mma[key]["all"] if key == "all" else mma[key][f"{key}_all"])[:10]
        reference_h = (homography[key]["all"] if key == "all" else homography[key][f"{key}_all"])[:10]
        quirky = mine["quirks"]
        ours_mma = [quirky[f"{prefix}mma@{t}"] for t in range(1, 11)]
        ours_h = [quirky[f"{prefix}hacc@{t}"] for t in range(1, 11)]
        worst = max(worst, *(abs(a - b) for a, b in zip(ours_mma + ours_h, reference_mma + reference_h)))
        rows.append((label, reference_mma, ours_mma, reference_h, ours_h, quirky[f"{prefix}num_pairs"]))
    print(json.dumps({"rows": rows, "no_quirks": mine["no_quirks"]}, indent=1, default=float))
    print(f"largest |ours (ime_quirks=true) - IME| over MMA@1..10 and homography@1..10: {worst:.3g}")


if __name__ == "__main__":
    main()
