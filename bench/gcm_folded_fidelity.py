"""GCM's folded student trunk (the mended default) against the exact full-resolution passes, on the three real
HPatches pairs in ../shared/data with the released dstl_r2d2.pt: how far the descriptor pyramid moves (float
rounding), and whether the matches and their MMA change.

  python -m bench.gcm_folded_fidelity [--configs avg_r2d2_95 vgg_dstlr2d2_95 --vgg <torchvision vgg19 file>]

Per pair: max |diff| and max |diff| / max |value| of every pyramid level of both images (raw: at a third of the pixels,
through RawAtPixels), then per config the match counts of both paths, how many (A, B) matches are identical, and MMA@1..10
(IME's definition, bench.gcm_fidelity.mma) of both.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench.gcm_fidelity import DATA, PAIRS, mma
from corrlab.datamodules.image_io import read_image_array
from corrlab.models.gcm.matcher import prepare
from corrlab.models.gcm.student import pooled_student_pyramid, student_pyramid
from corrlab.models.r2d2.folded_trunk import FoldedTrunk
from corrlab.modules.gcm import GCM
from corrlab.pipeline.instantiate import instantiate_method
from tests.conftest import compose_config

WEIGHTS = DATA / "weights" / "gcm" / "dstl_r2d2.pt"
THRESHOLDS = tuple(range(1, 11))


@torch.no_grad()
def pyramid_differences(net: torch.nn.Module, image: np.ndarray) -> list[dict]:
    """Per level (raw: at a third of the pixels (RawAtPixels), dw2, dw4, dw8, dw16): max |folded - exact| and that over max
    |exact|."""
    x, _ = prepare(image, torch.device("cpu"))
    exact = student_pyramid(net.features(x))[:5]
    trunk = FoldedTrunk(net)
    folded = pooled_student_pyramid(trunk.pooled(x))
    height, width = x.shape[-2:]
    y, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    pick = (y + xs) % 3 == 0  # a third of the pixels, on every row and column
    raw = trunk.raw_at_pixels(x).columns([(xs[pick], y[pick])])[0]
    rows = []
    for level, (mine, ref) in enumerate(zip([raw, *folded], [exact[0][0][:, pick], *exact[1:]], strict=True)):
        diff = float((mine - ref).abs().max())
        rows.append(dict(level=level, max_abs=diff, max_rel=diff / float(ref.abs().max())))
    return rows


def matcher(config: str, vgg: Path | None) -> GCM:
    cfg = compose_config("eval", ["model=gcm", f"model/gcm={config}"], Path("/tmp/gcm-folded-fidelity-cfg"))
    module: GCM = instantiate_method(cfg.model).eval()
    module.load_official({"fine": WEIGHTS} if config.startswith("avg") else {"fine": WEIGHTS, "backbone": vgg})
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["avg_r2d2_95"])
    parser.add_argument("--vgg", type=Path, help="torchvision vgg19 file for the vgg_* configs")
    args = parser.parse_args()
    net = matcher("avg_r2d2_95", None).matcher.backbone.net
    for seq, a, b, _ in PAIRS:
        folder = DATA / "hpatches" / "partial_pairs" / seq
        image_a, image_b = read_image_array(folder / a), read_image_array(folder / b)
        for name, image in (("A", image_a), ("B", image_b)):
            print(json.dumps(dict(pair=seq, image=name, levels=pyramid_differences(net, image))), flush=True)
    for config in args.configs:
        module = matcher(config, args.vgg)
        for seq, a, b, h in PAIRS:
            folder = DATA / "hpatches" / "partial_pairs" / seq
            image_a, image_b = read_image_array(folder / a), read_image_array(folder / b)
            H = np.loadtxt(folder / h)
            row = dict(config=config, pair=seq)
            sets = {}
            for path, exact in (("folded", False), ("exact", True)):
                module.matcher.exact_features = exact
                start = time.process_time()
                result = module.matcher.match(image_a, image_b)
                row[f"cpu_s_{path}"] = round(time.process_time() - start, 2)
                pa, pb = result.points_a.numpy(), result.points_b.numpy()
                row[path] = len(pa)
                row[f"mma_{path}"] = [round(v, 4) for v in mma(pa, pb, H, THRESHOLDS)]
                sets[path] = {tuple(r) for r in np.hstack([pa, pb]).tolist()}
            row["identical"] = len(sets["folded"] & sets["exact"])
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
