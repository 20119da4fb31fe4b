"""GCM side by side with the reference (AlexHan5832/GCM) on the three real HPatches pairs in ../shared/data.

The reference runs in a scratch copy (never in this repository), exported and patched for the CPU by `setup`:
  git --git-dir=<mirror of AlexHan5832/GCM> archive HEAD | tar x -C /tmp/gcm-ref
  + POSIX path and map_location='cpu' for dstl_r2d2.pt (utils/model_utils.py, nets/r2d2/patchnet.py).
Its VGG and ResNet-18 configs take torchvision's vgg19 / resnet18 file from $TORCH_HOME; ImageNet weights cannot be
downloaded here, so a seeded random VGG-19 / ResNet-18 (`torch.manual_seed(0)`) saved in torchvision's format is put
there and given to corrlab as weights.backbone.

  python -m bench.gcm_fidelity --mirror /work/.mirror/AlexHan5832+GCM/repo --configs avg_r2d2_95 avg_r2d2_6 vgg_dstlr2d2_95 \
      resnet18_dstlr2d2_95 resnet18_dstlr2d2_6

Prints, per config and pair: match counts of the reference, corrlab reference_compatible=true (with a bitwise
comparison of the coordinates) and the mended default, MMA@1/3/5 (IME's definition, unrounded) and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from corrlab.datamodules.image_io import read_image_array
from corrlab.modules.gcm import GCM
from tests.helpers.paths import PROJECT_ROOT

PAIRS = [
    ("v_adam", "1.ppm", "3.ppm", "H_1_3"),
    ("v_boat", "1.png", "2.png", "H_1_2"),
    ("v_calder", "1.ppm", "4.ppm", "H_1_4"),
]
REFERENCE_NAMES = {
    "avg_r2d2_95": "Avg_R2D2_95",
    "avg_r2d2_6": "Avg_R2D2_6",
    "vgg_dstlr2d2_95": "VGG_dstlR2D2_95",
    "vgg_dstlr2d2_6": "VGG_dstlR2D2_6",
    "resnet18_dstlr2d2_95": "ResNet18_dstlR2D2_95",
    "resnet18_dstlr2d2_6": "ResNet18_dstlR2D2_6",
}
# seeded random ImageNet-format backbones, the same file on both sides (torchvision's file names)
RANDOM_BACKBONES = {"vgg": "vgg19-dcbb9e9d.pth", "resnet18": "resnet18-f37072fd.pth"}
DATA = PROJECT_ROOT.parent / "shared" / "data"
DRIVER = """
import os, sys, time, numpy as np, yaml
from PIL import Image
sys.path.insert(0, os.getcwd())
from DeepFeatureMatcher import DeepFeatureMatcher
name, out, weights, root = sys.argv[1:5]
cfg = yaml.safe_load(open(f"configs/{name}.yml"))
if cfg.get("fine_weights_path"):
    cfg["fine_weights_path"] = weights
matcher = DeepFeatureMatcher(**cfg)
os.makedirs(out, exist_ok=True)
for spec in sys.argv[5:]:
    seq, a, b = spec.split(":")
    A, B = np.array(Image.open(f"{root}/{seq}/{a}")), np.array(Image.open(f"{root}/{seq}/{b}"))
    start = time.process_time()
    H, H_init, pA, pB = matcher.match(A, B)
    np.savez(f"{out}/{seq}.npz", pointsA=pA.T, pointsB=pB.T, cpu_s=time.process_time() - start)
"""


def setup(mirror: Path, folder: Path, weights: Path) -> None:
    """Export the reference snapshot into `folder` and apply the CPU patches (idempotent)."""
    if not (folder / "DeepFeatureMatcher.py").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", f"--git-dir={mirror}", "archive", "HEAD"], check=True, capture_output=True)
        subprocess.run(["tar", "x", "-C", str(folder)], input=archive.stdout, check=True)
    utils = folder / "utils" / "model_utils.py"
    text = utils.read_text().replace('r"..\\models\\trained\\dstl_r2d2.pt"', repr(str(weights)))
    utils.write_text(text.replace("checkpoint = torch.load(path)", "checkpoint = torch.load(path, map_location='cpu')"))
    patchnet = folder / "nets" / "r2d2" / "patchnet.py"
    patchnet.write_text(
        patchnet.read_text().replace("torch.load(model_fn)", "torch.load(model_fn, map_location='cpu')")
    )
    (folder / "corrlab_driver.py").write_text(DRIVER)
    checkpoints = folder / "torchhome" / "hub" / "checkpoints"
    import torchvision

    for prefix, file in RANDOM_BACKBONES.items():
        if not (checkpoints / file).is_file():
            checkpoints.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(0)
            arch = torchvision.models.vgg19 if prefix == "vgg" else torchvision.models.resnet18
            torch.save(arch().state_dict(), checkpoints / file)


def random_backbone(folder: Path, config: str) -> Path | None:
    """The seeded random torchvision file a VGG / ResNet-18 config uses on both sides (None for the student)."""
    prefix = next((p for p in RANDOM_BACKBONES if config.startswith(p)), None)
    return None if prefix is None else folder / "torchhome" / "hub" / "checkpoints" / RANDOM_BACKBONES[prefix]


def run_reference(folder: Path, config: str, weights: Path) -> Path:
    out = folder / "out" / config
    specs = [f"{seq}:{a}:{b}" for seq, a, b, _ in PAIRS]
    env = {**os.environ, "TORCH_HOME": str(folder / "torchhome")}
    root = DATA / "hpatches" / "partial_pairs"
    subprocess.run(
        [sys.executable, "corrlab_driver.py", REFERENCE_NAMES[config], str(out), str(weights), str(root), *specs],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return out


def mma(points_a: np.ndarray, points_b: np.ndarray, H: np.ndarray, thresholds=(1, 3, 5)) -> list[float]:
    """IME's MMA: H_gt applied to A's points as given (pixel indices), distance to B's, fraction <= t (unrounded)."""
    if len(points_a) == 0:
        return [0.0] * len(thresholds)
    projected = np.hstack([points_a, np.ones((len(points_a), 1))]) @ H.T
    distance = np.linalg.norm(projected[:, :2] / projected[:, 2:] - points_b, axis=1)
    return [float(np.mean(distance <= t)) for t in thresholds]


def run_corrlab(config: str, weights: Path, backbone: Path | None, compatible: bool) -> dict:
    from tests.conftest import compose_config

    overrides = ["model=gcm", f"model/gcm={config}", f"model.reference_compatible={str(compatible).lower()}"]
    cfg = compose_config("eval", overrides, Path("/tmp/gcm-fidelity-cfg"))
    from corrlab.pipeline.instantiate import instantiate_method

    module: GCM = instantiate_method(cfg.model).eval()
    module.load_official({"fine": weights} if backbone is None else {"fine": weights, "backbone": backbone})
    results = {}
    for seq, a, b, _ in PAIRS:
        folder = DATA / "hpatches" / "partial_pairs" / seq
        image_a, image_b = read_image_array(folder / a), read_image_array(folder / b)
        start = time.process_time()
        result = module.matcher.match(image_a, image_b)
        results[seq] = dict(
            points_a=result.points_a.numpy(), points_b=result.points_b.numpy(), cpu_s=time.process_time() - start
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, required=True, help="bare git dir of AlexHan5832/GCM")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/gcm-ref"))
    parser.add_argument("--configs", nargs="+", default=["avg_r2d2_95", "avg_r2d2_6", "vgg_dstlr2d2_95"])
    parser.add_argument(
        "--skip-reference", action="store_true", help="reuse the reference outputs already in --folder/out"
    )
    parser.add_argument("--modes", nargs="+", default=["compatible", "mended"], choices=["compatible", "mended"])
    args = parser.parse_args()
    weights = DATA / "weights" / "gcm" / "dstl_r2d2.pt"
    setup(args.mirror, args.folder, weights)
    table = []
    for config in args.configs:
        backbone = random_backbone(args.folder, config)
        out = args.folder / "out" / config if args.skip_reference else run_reference(args.folder, config, weights)
        ours = run_corrlab(config, weights, backbone, compatible=True) if "compatible" in args.modes else None
        mended = run_corrlab(config, weights, backbone, compatible=False) if "mended" in args.modes else None
        for seq, _, _, h in PAIRS:
            H = np.loadtxt(DATA / "hpatches" / "partial_pairs" / seq / h)
            ref = np.load(out / f"{seq}.npz")
            row = dict(
                config=config,
                pair=seq,
                reference=len(ref["pointsA"]),
                mma_reference=mma(ref["pointsA"], ref["pointsB"], H),
            )
            row["cpu_s_reference"] = float(ref["cpu_s"]) if "cpu_s" in ref else None
            if ours is not None:
                mine = ours[seq]
                row["compatible"] = len(mine["points_a"])
                row["bitwise_identical"] = ref["pointsA"].shape == mine["points_a"].shape and bool(
                    np.array_equal(ref["pointsA"], mine["points_a"])
                    and np.array_equal(ref["pointsB"], mine["points_b"])
                )
                row["mma_compatible"] = mma(mine["points_a"], mine["points_b"], H)
                row["cpu_s_compatible"] = mine["cpu_s"]
            if mended is not None:
                row["mended"] = len(mended[seq]["points_a"])
                row["mma_mended"] = mma(mended[seq]["points_a"], mended[seq]["points_b"], H)
            table.append(row)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
