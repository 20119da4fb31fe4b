"""Runs inside the scratch copy of the GeoAware-SC reference (bench/geoaware_fidelity.py starts it): its
pck_train.eval on data/SPair-71k for several read-out settings (with what compute_pck returns per category, the
per-image geo-aware PCK of its eval_spair, descriptors and flip distances), and one training step.
Usage: python geoaware_reference_driver.py <reference src> <stubs> <weights> <out.pt> eval|train|speed:<setting>
(cwd = the run folder, holding data/SPair-71k)"""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from pathlib import Path

sys.path[:0] = [sys.argv[1], sys.argv[2], str(Path(__file__).resolve().parents[1])]
import pck_train as P  # noqa: E402
import torch  # noqa: E402
import utils.utils_losses as losses  # noqa: E402
from model_utils.corr_map_model import Correlation2Displacement  # noqa: E402
from model_utils.projection_network import AggregationNetwork, DummyAggregationNetwork  # noqa: E402
from torch.nn.functional import pad  # noqa: E402
from utils.eval_spair import convert_all_results, get_img_result  # noqa: E402
from utils.utils_correspondence import get_distance_mutual_nn, load_img_and_kps  # noqa: E402
from utils.utils_dataset import load_eval_data, load_spair_data  # noqa: E402
from utils.utils_geoware import SPAIR_FLIP_TRN  # noqa: E402

from bench.peak_memory import peak_rss_mb  # noqa: E402

DATA = "data/SPair-71k"
SETTINGS = {
    "supervised_nn": dict(SOFT_EVAL=False, SOFT_EVAL_WINDOW=7, DUMMY_NET=False, ADAPT_FLIP=False),
    "supervised_soft7": dict(SOFT_EVAL=True, SOFT_EVAL_WINDOW=7, DUMMY_NET=False, ADAPT_FLIP=False),
    "zero_shot_soft5_flip": dict(SOFT_EVAL=True, SOFT_EVAL_WINDOW=5, DUMMY_NET=True, ADAPT_FLIP=True),
    "supervised_nn_flip": dict(SOFT_EVAL=False, SOFT_EVAL_WINDOW=7, DUMMY_NET=False, ADAPT_FLIP=True),
}
BASE = dict(
    EVAL_DATASET="spair",
    TRAIN_DATASET="spair",
    NUM_PATCHES=60,
    ANNO_SIZE=840,
    TEST_SAMPLE=0,
    MUTUAL_NN=True,
    KPT_RESULT=False,
    COMPUTE_GEOAWARE_METRICS=True,
    TOTAL_SAVE_RESULT=0,
    ENSEMBLE=1,
    BBOX_THRE=True,
    AP10K_EVAL_SUBSET="intra-species",
    SAMPLE=None,
    DENSE_OBJ=1,
    GAUSSIAN_AUGMENT=0.0,
    AUGMENT_FLIP=1.0,
    AUGMENT_DOUBLE_FLIP=1.0,
    AUGMENT_SELF_FLIP=0.25,
    SELF_CONTRAST_WEIGHT=0,
    PROJ_DIM=768,
    SOFT_TRAIN_WINDOW=0,
    IMG_THRESHOLD=False,
)
DESCRIPTOR_ROWS = slice(0, 3600, 9)  # the descriptor rows kept for the comparison (every 9th patch)


def network(args: Namespace, weights: str) -> torch.nn.Module:
    if args.DUMMY_NET:
        return DummyAggregationNetwork()
    net = AggregationNetwork(
        device="cpu", feature_dims=[640, 1280, 1280, 768], projection_dim=768, feat_map_dropout=0.0
    )
    net.load_state_dict(torch.load(weights), strict=True)
    return net


def categories() -> list[str]:
    return sorted(os.listdir(f"{DATA}/ImageAnnotation"))


def recording_compute_pck(calls: list) -> None:
    """Wrap P.compute_pck so that what it returns per category (per-keypoint PCK and count, geo-aware scores,
    per-image PCK) is recorded."""
    original = P.compute_pck

    def wrapper(args, *rest, **kwargs):
        correct, geo_score, out_results, img_correct = original(args, *rest, **kwargs)
        calls.append({"category": rest[4], "kpt": correct, "geo": geo_score, "img": img_correct})
        return correct, geo_score, out_results, img_correct

    P.compute_pck = wrapper


def descriptors_and_flips(args: Namespace, net: torch.nn.Module) -> tuple[dict, list]:
    """Descriptor rows of every test image view, and the mutual-NN flip distances of every test pair."""
    descs, flips = {}, []
    for category in categories():
        files, _, _, _ = load_eval_data(args, DATA, category, "test")
        for idx in range(len(files) // 2):
            d1, d2, _, _ = P.get_patch_descriptors(args, net, 60, files, idx)
            f1, f2, _, _ = P.get_patch_descriptors(args, net, 60, files, idx, flip=True, flip2=True)
            for path, desc, flip in ((files[2 * idx], d1, False), (files[2 * idx + 1], d2, False)):
                descs[(path, flip)] = desc[0, DESCRIPTOR_ROWS].clone()
            descs[(files[2 * idx], True)] = f1[0, DESCRIPTOR_ROWS].clone()
            descs[(files[2 * idx + 1], True)] = f2[0, DESCRIPTOR_ROWS].clone()
            flips.append(
                {
                    "pair": (files[2 * idx], files[2 * idx + 1]),
                    "original": float(get_distance_mutual_nn(d1, d2)),
                    "flipped": float(get_distance_mutual_nn(f1, d2)),
                }
            )
    return descs, flips


def main() -> None:
    weights, out_path, mode = sys.argv[3], sys.argv[4], sys.argv[5]
    torch.set_num_threads(1)
    if mode in ("train", "train:no_self_flip"):
        torch.save(train_step(weights, self_flip=0.0 if mode.endswith("no_self_flip") else 0.25), out_path)
        return
    if mode.startswith("speed:"):  # one setting's evaluation, timed, in this process (peak RSS = this run)
        import json
        import time

        args = Namespace(**BASE, **SETTINGS[mode.split(":")[1]])
        net = network(args, weights).eval()
        start = time.perf_counter()
        with torch.no_grad():
            P.eval(args, net, "out", split="test")
        seconds = time.perf_counter() - start
        rss = peak_rss_mb()
        with open(out_path, "w") as f:
            json.dump({"seconds": seconds, "peak_rss_mb": rss}, f)
        return
    calls: list = []
    recording_compute_pck(calls)
    results = {}
    for name, setting in SETTINGS.items():
        args = Namespace(**BASE, **setting)
        net = network(args, weights).eval()
        calls.clear()
        with torch.no_grad():
            pck010, pck005, pck001, records = P.eval(args, net, "out", split="test")
            geo_img = get_img_result(convert_all_results(records), geo=True)
            descs, flips = (
                descriptors_and_flips(args, net) if name in ("supervised_nn", "zero_shot_soft5_flip") else ({}, [])
            )
            if setting["ADAPT_FLIP"] and not flips:
                _, flips = descriptors_and_flips(args, net)
        results[name] = {
            "pck": (pck010, pck005, pck001),
            "per_category": list(calls),
            "geo_per_image": (geo_img[0].tolist(), geo_img[1]),
            "pairs": [(r["src_fn"], r["trg_fn"], torch.as_tensor(r["src_kpts_pred"])) for r in records],
            "descriptors": descs,
            "flips": flips,
            "log": list(P.logger.messages),
        }
        P.logger.messages.clear()
    torch.save(results, out_path)


def train_step(weights: str, self_flip: float = 0.25) -> dict:
    """One pair of the reference's train(): descriptors, calculate_loss, backward (the cat's first trn pair)."""
    base = BASE | {"AUGMENT_SELF_FLIP": self_flip}
    args = Namespace(**base, SOFT_EVAL=True, SOFT_EVAL_WINDOW=7, DUMMY_NET=False, ADAPT_FLIP=0)
    net = network(args, weights).train()
    corr = Correlation2Displacement(setting=1, window_size=0)
    # load_and_prepare_data's per-category loop, for the only category with training pairs (it stacks an empty
    # list for a category without any)
    files, kps, thresholds, _ = load_spair_data(DATA, size=840, category="cat", split="trn")
    kps = pad(kps, (0, 0, 0, 30 - kps.shape[1], 0, 0), value=0)
    img1, img1_kps = load_img_and_kps(idx=0, files=files, kps=kps, edge=False)
    img2, img2_kps = load_img_and_kps(idx=1, files=files, kps=kps, edge=False)
    d1, d2, _, _ = P.get_patch_descriptors(args, net, 60, files, 0)
    f1, f2, _, _ = P.get_patch_descriptors(args, net, 60, files, 0, flip=True, flip2=True)
    permute = SPAIR_FLIP_TRN[files[0].split("/")[-2]]
    scale = 60 / 840
    loss = losses.calculate_loss(
        args,
        net,
        img1_kps,
        img2_kps,
        d1,
        d2,
        thresholds[0] * scale,
        thresholds[1] * scale,
        None,
        None,
        60,
        "cpu",
        permute,
        f1,
        f2,
        corr,
    )
    loss.backward()
    grads = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    grads["loss.x_normal"], grads["loss.y_normal"] = corr.x_normal.grad.clone(), corr.y_normal.grad.clone()
    return {"loss": float(loss), "grads": grads}


if __name__ == "__main__":
    main()
