"""GeoAware-SC side by side with the reference (Junyi42/GeoAware-SC, run from a scratch copy, patched for CPU):
same random AggregationNetwork weights in the official format, same random features in the reference's cache
layout (<cat>/<img>_sd.pt, _dino.pt, _flip) on SPair-format pairs made from the real photos of ../shared/data
(tests/helpers/real_spair.py: crops, mirrors and rescalings, so the keypoints are exact; the features are random
but follow that geometry).  Compares descriptors, transferred keypoints (NN, window soft-argmax, flip test), flip
distances and decisions, PCK per image / per keypoint / geo-aware subset, overall and per category, and one
training step's loss and gradients.

    python bench/geoaware_fidelity.py [--reference-git /work/.mirror/Junyi42+GeoAware-SC/repo] [--scratch /tmp/geoaware-ref]
        [--train-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.helpers (the real-image SPair pairs)
from corrlab.datamodules.spair import SPairDataModule
from corrlab.models.geoaware.aggregation import AggregationNetwork
from corrlab.models.geoaware.feature_cache import ReferenceFeatureCache
from corrlab.modules.geoaware import GeoAwareSC
from corrlab.pipeline.evaluate import evaluate
from tests.conftest import SHARED_DATA, compose_config
from tests.helpers.real_spair import write_real_spair, write_reference_features

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


def write_inputs(run: Path, seed: int = 0, **pairs) -> tuple[Path, Path]:
    """The real-image SPair pairs under run/data/SPair-71k (`pairs`: write_real_spair's pairs / categories), their
    random reference-layout features (fp32, s4 30x30, s5 15x15) and random AggregationNetwork weights in the
    official format."""
    root = run / "data" / "SPair-71k"
    write_real_spair(root, SHARED_DATA, **pairs)
    write_reference_features(root, seed, categories=pairs.get("categories", ()))
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


MODULES: dict[str, GeoAwareSC] = {}  # one evaluation module per post-processor: its descriptor and flip caches are
# shared by every comparison of the settings using it (the read-out switches do not change descriptors)


def shared_module(root: Path, weights: Path, setting: dict) -> GeoAwareSC:
    """The evaluation module of setting's post-processor, switched to its read-out (caches kept)."""
    if setting["post_processor"] not in MODULES:
        MODULES[setting["post_processor"]] = our_module(root, weights, setting)
    module = MODULES[setting["post_processor"]]
    module.soft_eval, module.window, module.adapt_flip = setting["soft_eval"], setting["window"], setting["adapt_flip"]
    return module


def our_predictions(module: GeoAwareSC, root: Path) -> dict[str, torch.Tensor]:
    """(valid keypoint ids, letterboxed (840) predictions) per pair name."""
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


def pair_images(pair_name: str) -> tuple[str, str, str]:
    """(category, source, target) of an SPair pair name."""
    stem, _, category = pair_name.partition(":")
    _, source, target = stem.split("-")
    return category, source, target


def our_flip_distances(module: GeoAwareSC, root: Path) -> dict[tuple[str, str, str], tuple[float, float]]:
    """(original, mirrored-source) mutual-NN distances per (category, source, target)."""
    from corrlab.models.geoaware.readout import mutual_nn_distance

    data = SPairDataModule(str(root))
    data.setup("test")
    out = {}
    with torch.no_grad():
        for batch in data.test_dataloader():
            d1 = module.descriptors(batch, 1, 0)
            original = mutual_nn_distance(module.descriptors(batch, 0, 0), d1)
            flipped = mutual_nn_distance(module.descriptors(batch, 0, 0, flip=True), d1)
            out[pair_images(batch["name"][0])] = (float(original), float(flipped))
    return out


def descriptor_difference(module: GeoAwareSC, reference: dict) -> float:
    """Max |ours - reference| over the compared rows of every image view's L2-normalised descriptors."""
    worst = 0.0
    with torch.no_grad():
        for (path, flip), rows in reference.items():
            key = str(Path(path).relative_to("data/SPair-71k").with_suffix(""))
            ours = module._descriptors.get((key, flip))  # described by the evaluation, else now
            ours = module.describe(module.features(key, None, flip)) if ours is None else ours
            worst = max(worst, float((ours[::9] - rows).abs().max()))
    return worst


def our_pck(root: Path, weights: Path, setting: dict, run: Path, module: GeoAwareSC | None = None) -> dict:
    """Metrics of our eval.py pipeline (summary.json) for a setting; with `module`, the pipeline evaluates that
    (already built and loaded, caches kept) instead of building its own."""
    from unittest import mock

    import corrlab.pipeline.evaluate as pipeline

    overrides = ["model=geoaware", "data=spair", f"data.root={root}", "model/features=reference_cache"]
    overrides += [f"model.features.root={root}", "num_figures=0", "model.feat_map_dropout=0.0"]
    overrides += [f"model.{k}={v}" for k, v in setting.items()]
    if setting["post_processor"] == "aggregation":
        overrides.append(f"weights={weights}")
    cfg = compose_config("eval", overrides, run / "ours" / "-".join(map(str, setting.values())))
    if module is None:
        return evaluate(cfg)["metrics"]
    shared = [{"path": str(weights), "format": "bench: the shared module, loaded by load_official"}]
    with mock.patch.object(pipeline, "build_module", lambda cfg, device: (module, shared)):
        return evaluate(cfg)["metrics"]


def our_train_step(root: Path, weights: Path, self_flip: float = 0.25) -> dict:
    setting = dict(post_processor="aggregation", soft_eval=True, window=7, adapt_flip=False)
    module = our_module(root, weights, setting, train=True)
    module.loss.self_flip = self_flip
    data = SPairDataModule(str(root), batch_size=1, flip_probability=0.0, train_resize={"mode": "none"})
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    loss = module.compute_losses(batch)["total"]
    loss.backward()
    grads = {k.removeprefix("net."): p.grad for k, p in module.named_parameters() if p.grad is not None}
    return {"loss": float(loss.detach()), "grads": grads}


ALPHAS = ("0.1", "0.05", "0.01")


def reference_pck(ref: dict) -> dict[str, float]:
    """The reference's PCK in our summary's names: per image (pck_train.eval), per keypoint (compute_pck's
    per-category keypoint PCK weighted by keypoint counts), geo-aware per keypoint (its geo scores weighted by
    geo-aware keypoint counts, as log_geo_stats) and per image (eval_spair.get_img_result(geo=True)), per category."""
    out = {f"pck@{a}": v for a, v in zip(ALPHAS, ref["pck"])}
    calls = ref["per_category"]
    kpts = sum(c["kpt"][3] for c in calls)
    geo_kpts = sum(c["geo"][5] for c in calls)
    for k, a in enumerate(ALPHAS):
        out[f"pck_kpt@{a}"] = sum(c["kpt"][k] * c["kpt"][3] for c in calls) / kpts
        out[f"geo/pck_kpt@{a}"] = sum(c["geo"][2 + k] * c["geo"][5] for c in calls if c["geo"][5]) / geo_kpts
        out[f"geo/pck@{a}"] = ref["geo_per_image"][0][k]
        for c in calls:
            out[f"category/{c['category']}/pck@{a}"] = c["img"][k]
            out[f"category/{c['category']}/pck_kpt@{a}"] = c["kpt"][k]
    out["geo/num_pairs"] = ref["geo_per_image"][1]
    return out


def compare_setting(root: Path, weights: Path, run: Path, setting: dict, ref: dict) -> dict:
    """One read-out setting: keypoints, PCK (every metric the reference reports), descriptors, flip test."""
    ref_pairs = {(Path(s).parent.name, Path(s).stem, Path(t).stem): pred for s, t, pred in ref["pairs"]}
    module = shared_module(root, weights, setting)
    metrics = our_pck(root, weights, setting, run, module)
    diffs, per_keypoint, keypoints = [], {}, 0
    for pair_name, (ids, pred) in our_predictions(module, root).items():
        ref_pred = ref_pairs[pair_images(pair_name)][ids]
        error = (ref_pred - pred).abs().amax(-1)
        diffs.append(float(error.max()))
        keypoints += len(ids)
        per_keypoint[pair_name] = {i: e for i, e in zip(ids.tolist(), error.tolist()) if e > 1e-3}
    ref_metrics = reference_pck(ref)
    out = {
        "pairs": len(diffs),
        "keypoints": keypoints,
        "max_abs_keypoint_difference_px": max(diffs),
        "keypoints_differing_over_1e-3_px": {k: v for k, v in per_keypoint.items() if v},
        "max_abs_pck_difference": max(abs(metrics[k] - v) for k, v in ref_metrics.items()),
        "pck_ours": {k: metrics[k] for k in ref_metrics},
        "pck_reference": ref_metrics,
    }
    if ref["descriptors"]:
        out["descriptor_views"] = len(ref["descriptors"])
        out["max_abs_descriptor_difference"] = descriptor_difference(module, ref["descriptors"])
    if setting["adapt_flip"]:
        ours_flip = our_flip_distances(module, root)
        rows = []
        for f in ref["flips"]:
            pair = (Path(f["pair"][0]).parent.name, Path(f["pair"][0]).stem, Path(f["pair"][1]).stem)
            original, flipped = ours_flip[pair]
            rows.append(
                {
                    "pair": "/".join(pair),
                    "distances_ours": [original, flipped],
                    "distances_reference": [f["original"], f["flipped"]],
                    "flip_ours": flipped < original,
                    "flip_reference": f["flipped"] < f["original"],
                }
            )
        out["flip_decisions_equal"] = sum(r["flip_ours"] == r["flip_reference"] for r in rows)
        out["flips_chosen"] = sum(r["flip_reference"] for r in rows)
        out["max_abs_flip_distance_difference"] = max(
            abs(a - b) for r in rows for a, b in zip(r["distances_ours"], r["distances_reference"])
        )
        out["flip_test"] = rows
    return out


def compare_train_step(root: Path, weights: Path, ref_train: dict, self_flip: float = 0.25) -> dict:
    ours_train = our_train_step(root, weights, self_flip)
    by_max, by_norm = {}, {}
    for k, g in ref_train["grads"].items():
        d = ours_train["grads"][k] - g
        by_max[k] = float(d.abs().max() / (g.abs().max() + 1e-12))
        by_norm[k] = float(d.norm() / (g.norm() + 1e-12))
    return {
        "loss_ours": ours_train["loss"],
        "loss_reference": ref_train["loss"],
        "max_relative_gradient_difference": max(by_max.values()),
        "max_gradient_difference_relative_to_norm": max(by_norm.values()),
        "gradients_compared": len(by_max),
        "missing_in_ours": sorted(set(ref_train["grads"]) - set(ours_train["grads"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-git", type=Path, default=Path("/work/.mirror/Junyi42+GeoAware-SC/repo"))
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/geoaware-ref"))
    parser.add_argument("--json", type=Path, default=None, help="write the comparison here")
    parser.add_argument("--train-only", action="store_true", help="compare only the training steps")
    args = parser.parse_args()
    src = prepare_reference(args.reference_git, args.scratch)
    run = args.scratch / "real"
    if (run / "random_official.PTH").is_file():  # inputs of a previous run (the reference results depend on them)
        root, weights = run / "data" / "SPair-71k", run / "random_official.PTH"
    else:
        root, weights = write_inputs(run)
    report = {}
    if not args.train_only:
        reference = run_reference(src, args.scratch, run, weights, "eval")
        report = {name: compare_setting(root, weights, run, s, reference[name]) for name, s in SETTINGS.items()}
    report["train_step"] = compare_train_step(root, weights, run_reference(src, args.scratch, run, weights, "train"))
    # without the self-flip term (the only term using source keypoints invisible in the target)
    ref_train = run_reference(src, args.scratch, run, weights, "train:no_self_flip")
    report["train_step_without_self_flip"] = compare_train_step(root, weights, ref_train, self_flip=0.0)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
