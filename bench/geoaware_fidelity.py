"""GeoAware-SC side by side with the reference (Junyi42/GeoAware-SC, run from a scratch copy, patched for CPU):
same random AggregationNetwork weights in the official format, same random features in the reference's cache
layout (<cat>/<img>_sd.pt, _dino.pt, _flip) on the SPair-format fixture pairs.  Compares transferred keypoints
(NN, window soft-argmax, flip test), flip distances and decisions, PCK per image / per keypoint / geo-aware,
and one training step's loss and gradients.

    python bench/geoaware_fidelity.py [--reference-git /work/.mirror/Junyi42+GeoAware-SC/repo] [--scratch /tmp/geoaware-ref]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.helpers (the SPair fixture)
from corrlab.datamodules.spair import SPairDataModule
from corrlab.models.geoaware.aggregation import AggregationNetwork
from corrlab.models.geoaware.feature_cache import ReferenceFeatureCache
from corrlab.modules.geoaware import GeoAwareSC
from corrlab.pipeline.evaluate import evaluate
from tests.conftest import compose_config
from tests.helpers.semantic_fixtures import SPAIR_IMAGES, write_spair

DRIVER = Path(__file__).with_name("geoaware_reference_driver.py")
STUBS = {
    "fvcore/__init__.py": "",
    "fvcore/nn/__init__.py": "",
    # c2_msra_fill: Kaiming normal (fan_out) and zero bias, as fvcore
    "fvcore/nn/weight_init.py": "import torch.nn as nn\n"
    "def c2_msra_fill(m):\n    nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')\n"
    "    if m.bias is not None:\n        nn.init.constant_(m.bias, 0)\n",
    "loguru.py": "class _Logger:\n    messages = []\n"
    "    def info(self, m): self.messages.append(str(m))\n    def configure(self, **k): pass\n"
    "    def add(self, *a, **k): pass\nlogger = _Logger()\n",
    "wandb.py": "def init(*a, **k): pass\ndef log(*a, **k): pass\n",
    "pandas.py": "",  # only the PF-Pascal csv reader uses it
}
SETTINGS = {  # ours, matching the driver's SETTINGS
    "supervised_nn": dict(post_processor="aggregation", soft_eval=False, window=7, adapt_flip=False),
    "supervised_soft7": dict(post_processor="aggregation", soft_eval=True, window=7, adapt_flip=False),
    "zero_shot_soft5_flip": dict(post_processor="dummy", soft_eval=True, window=5, adapt_flip=True),
    "supervised_nn_flip": dict(post_processor="aggregation", soft_eval=False, window=7, adapt_flip=True),
}


def prepare_reference(git_dir: Path, scratch: Path) -> Path:
    """Export the reference into scratch/src and patch it for CPU: no .cuda(), 1 thread, set_seed inline."""
    src = scratch / "src"
    src.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", f"--git-dir={git_dir}", "archive", "HEAD", "model_utils", "utils", "pck_train.py"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "x", "-C", str(src)], input=archive, check=True)
    for path in src.rglob("*.py"):
        text = path.read_text().replace(".cuda()", "").replace("device='cuda'", "device='cpu'")
        text = text.replace("torch.set_num_threads(16)", "torch.set_num_threads(1)")
        text = text.replace("from preprocess_map import set_seed", "set_seed = lambda seed: None")
        path.write_text(text)
    for name, text in STUBS.items():
        (scratch / "stubs" / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / "stubs" / name).write_text(text)
    return src


def write_inputs(run: Path, seed: int = 0) -> tuple[Path, Path]:
    """The SPair fixture under run/data/SPair-71k, random reference-layout features, random official weights."""
    root = run / "data" / "SPair-71k"
    write_spair(root)
    generator = torch.Generator().manual_seed(seed)
    for category, (_, src, trg, *_rest) in SPAIR_IMAGES.items():
        for image in (src, trg):
            for suffix in ("", "_flip"):
                sd = {
                    "s3": torch.randn(1, 640, 60, 60, generator=generator),
                    "s4": torch.randn(1, 1280, 30, 30, generator=generator),
                    "s5": torch.randn(1, 1280, 15, 15, generator=generator),
                }
                folder = root / "features" / category
                folder.mkdir(parents=True, exist_ok=True)
                torch.save(sd, folder / f"{image}_sd{suffix}.pt")
                torch.save(torch.randn(1, 768, 60, 60, generator=generator), folder / f"{image}_dino{suffix}.pt")
    torch.manual_seed(seed)
    net = AggregationNetwork()
    with torch.no_grad():  # non-trivial mixing weights and GN affines
        net.mixing_weights.copy_(torch.randn(4))
        for module in net.modules():
            if isinstance(module, torch.nn.GroupNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    weights = run / "random_official.PTH"
    torch.save(net.state_dict(), weights)
    return root, weights


def run_reference(src: Path, scratch: Path, run: Path, weights: Path, mode: str) -> dict:
    """The driver's results (kept in run/reference_<mode>.pt: rerunning the bench reuses them)."""
    out = run / f"reference_{mode}.pt"
    if not out.is_file():
        command = [sys.executable, str(DRIVER), str(src), str(scratch / "stubs"), str(weights), str(out), mode]
        subprocess.run(command, cwd=run, check=True)
    return torch.load(out, weights_only=False)


def our_module(root: Path, weights: Path, setting: dict, train: bool = False) -> GeoAwareSC:
    losses = {"gaussian_augment": 0.0}
    features = ReferenceFeatureCache(str(root))
    module = GeoAwareSC(features, feat_map_dropout=0.0, losses=losses, **setting)
    if setting["post_processor"] == "aggregation":
        module.load_official(weights)
    return module.train(train)


def our_predictions(root: Path, weights: Path, setting: dict) -> dict[str, torch.Tensor]:
    """(valid keypoint ids, letterboxed (840) predictions) per pair name."""
    module = our_module(root, weights, setting)
    data = SPairDataModule(str(root))
    data.setup("test")
    out = {}
    with torch.no_grad():
        for batch in data.test_dataloader():
            pred = module.transfer(batch, batch["kpts0"])[0]
            box = module.letterbox(batch, 1, 0)
            valid = batch["kpts_valid"][0].bool()
            out[batch["name"][0]] = (torch.nonzero(valid)[:, 0], box.forward(pred)[valid])
    return out


def our_flip_distances(root: Path, weights: Path, setting: dict) -> dict[tuple[str, str], tuple[float, float]]:
    """(original, mirrored-source) mutual-NN distances per (category, source image)."""
    from corrlab.models.geoaware.readout import mutual_nn_distance

    module = our_module(root, weights, setting)
    data = SPairDataModule(str(root))
    data.setup("test")
    out = {}
    with torch.no_grad():
        for batch in data.test_dataloader():
            d1 = module.descriptors(batch, 1, 0)
            original = mutual_nn_distance(module.descriptors(batch, 0, 0), d1)
            flipped = mutual_nn_distance(module.descriptors(batch, 0, 0, flip=True), d1)
            stem, _, category = batch["name"][0].partition(":")
            out[(category, stem.split("-")[1])] = (float(original), float(flipped))
    return out


def our_pck(root: Path, weights: Path, setting: dict, run: Path) -> dict:
    overrides = ["model=geoaware", "data=spair", f"data.root={root}", "model/features=reference_cache"]
    overrides += [f"model.features.root={root}", "num_figures=0", "model.feat_map_dropout=0.0"]
    overrides += [f"model.{k}={v}" for k, v in setting.items()]
    if setting["post_processor"] == "aggregation":
        overrides.append(f"weights={weights}")
    return evaluate(compose_config("eval", overrides, run / "ours" / "-".join(map(str, setting.values()))))["metrics"]


def our_train_step(root: Path, weights: Path) -> dict:
    setting = dict(post_processor="aggregation", soft_eval=True, window=7, adapt_flip=False)
    module = our_module(root, weights, setting, train=True)
    data = SPairDataModule(str(root), batch_size=1, flip_probability=0.0, train_resize={"mode": "none"})
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    loss = module.compute_losses(batch)["total"]
    loss.backward()
    grads = {k.removeprefix("net."): p.grad for k, p in module.named_parameters() if p.grad is not None}
    return {"loss": float(loss.detach()), "grads": grads}


def reference_pck(log: list[str]) -> dict[str, float]:
    """Overall per-image PCK@0.10/0.05/0.01 and geo-aware per-image PCK from the reference's log lines."""
    out = {}
    for line in log:
        match = re.search(
            r"Weighted Per image PCK0.10: ([\d.]+)%, image PCK0.05: ([\d.]+)%, image PCK0.01: ([\d.]+)", line
        )
        if match:
            out.update({f"pck@{a}": float(v) / 100 for a, v in zip(("0.1", "0.05", "0.01"), match.groups())})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-git", type=Path, default=Path("/work/.mirror/Junyi42+GeoAware-SC/repo"))
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/geoaware-ref"))
    parser.add_argument("--json", type=Path, default=None, help="write the comparison here")
    args = parser.parse_args()
    src = prepare_reference(args.reference_git, args.scratch)
    run = args.scratch / "run"
    if (run / "random_official.PTH").is_file():  # inputs of a previous run (the reference results depend on them)
        root, weights = run / "data" / "SPair-71k", run / "random_official.PTH"
    else:
        root, weights = write_inputs(run)
    reference = run_reference(src, args.scratch, run, weights, "eval")
    report: dict = {}
    for name, setting in SETTINGS.items():
        ref = reference[name]
        ours = our_predictions(root, weights, setting)
        ref_pairs = {}
        for src_fn, trg_fn, pred in ref["pairs"]:
            category, source, target = Path(src_fn).parent.name, Path(src_fn).stem, Path(trg_fn).stem
            ref_pairs[(category, source, target)] = pred
        diffs, per_keypoint = [], {}
        for pair_name, (ids, pred) in ours.items():
            stem, _, category = pair_name.partition(":")
            _, source, target = stem.split("-")
            ref_pred = ref_pairs[(category, source, target)][ids]
            diffs.append(float((ref_pred - pred).abs().max()))
            per_keypoint[pair_name] = dict(zip(ids.tolist(), (ref_pred - pred).abs().amax(-1).tolist()))
        metrics = our_pck(root, weights, setting, run)
        ref_metrics = reference_pck(ref["log"])
        report[name] = {
            "max_abs_keypoint_difference_px": max(diffs),
            "abs_difference_per_keypoint_id_px": per_keypoint,
            "pck_ours": {k: metrics[k] for k in ref_metrics},
            "pck_reference": ref_metrics,
        }
        if setting["adapt_flip"]:
            ours_flip = our_flip_distances(root, weights, setting)
            ref_flip = {(Path(f["pair"][0]).parent.name, Path(f["pair"][0]).stem): f for f in ref["flips"]}
            rows = []
            for pair, (original, flipped) in sorted(ours_flip.items()):
                theirs = ref_flip[pair]
                rows.append(
                    {
                        "pair": "/".join(pair),
                        "distances_ours": [original, flipped],
                        "distances_reference": [theirs["original"], theirs["flipped"]],
                        "flip_ours": flipped < original,
                        "flip_reference": theirs["flipped"] < theirs["original"],
                    }
                )
            report[name]["flip_test"] = rows
    ours_train = our_train_step(root, weights)
    ref_train = run_reference(src, args.scratch, run, weights, "train")
    grad_diff = {
        k: float((ours_train["grads"][k] - g).abs().max() / (g.abs().max() + 1e-12))
        for k, g in ref_train["grads"].items()
    }
    report["train_step"] = {
        "loss_ours": ours_train["loss"],
        "loss_reference": ref_train["loss"],
        "max_relative_gradient_difference": max(grad_diff.values()),
        "gradients_compared": len(grad_diff),
        "missing_in_ours": sorted(set(ref_train["grads"]) - set(ours_train["grads"])),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
