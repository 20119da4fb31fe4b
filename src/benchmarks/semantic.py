"""Semantic keypoint-transfer protocol (SPair-71k, PF-Pascal, AP-10K): PCK@alpha per image and per keypoint,
per category, per difficulty flag and on the geometry-aware subset, in original-image pixels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from corrlab.benchmarks.base import Benchmark, BenchmarkData
from corrlab.geometry.scaling import to_original
from corrlab.matches import Matches
from corrlab.metrics import SemanticPCK

# direction: which image's keypoints are the queries; the errors and the threshold base L live in the other one.
CONVENTIONS = {
    "geoaware": {
        "direction": "source_to_target",
        "strict": True,
        "description": "GeoAware-SC (utils/eval_spair.py): image-0 keypoints transferred into image 1, L from image 1 "
        "(target bbox or target image), correct when error < alpha * L",
    },
    "densematching": {
        "direction": "target_to_source",
        "strict": False,
        "description": "DenseMatching run_evaluation_semantic: image-1 keypoints transferred into image 0 (flow target->source), "
        "L from image 0 (source bbox or source image), correct when error <= alpha * L",
    },
}
THRESHOLDS = ("bbox", "image")
Group = tuple[int, ...]


def swap_sides(batch: dict) -> dict:
    """The batch with image 0 and image 1 exchanged (every key ending in 0 swapped with its 1)."""
    out = dict(batch)
    for key in batch:
        other = key[:-1] + "1"
        if key.endswith("0") and other in batch:
            out[key], out[other] = batch[other], batch[key]
    return out


def geo_aware_mask(groups: Sequence[Group], ids: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Which of the keypoints `ids` (mutually visible) are geometry-aware: their group has at least two
    members visible in the image the predictions are made in (`visible`, indexed by id)."""
    mask = np.zeros(len(ids), dtype=bool)
    for group in groups:
        members = np.array(group)
        if visible[members[members < len(visible)]].sum() >= 2:
            mask |= np.isin(ids, members)
    return mask


def group_key(prefix: str, value: Any) -> str:
    """Metric-group name, e.g. category/aeroplane or viewpoint_variation/2 (no '.' allowed)."""
    return f"{prefix}/{str(value).replace('.', '_').replace(' ', '_')}"


class SemanticBenchmark(Benchmark):
    """Keypoint transfer scored with PCK@alpha (SemanticPCK: `pck@a` per image, `pck_kpt@a` pooled).

    The module predicts through `module.transfer(batch, queries)` (`predict`), so dense and sparse methods
    run alike.  Groups: every pair ("all"), `category/<c>`, `<flag>/<value>` (SPair difficulty flags) and
    `geo` (the geometry-aware keypoints of GeoAware-SC; pairs without one are not counted there).
    The protocol's parameters are the benchmark's (conf/benchmark/semantic_pck.yaml): `convention` (a key of
    CONVENTIONS), `threshold` (the base L: bbox | image) and `alphas`.
    """

    required_ground_truth = ("kpts0", "kpts1", "kpts_valid", "category")
    required_facts = ("categories",)

    def __init__(
        self,
        data: BenchmarkData,
        name: str = "semantic_pck",
        main_metric: str = "pck@0.1",
        mode: str = "max",
        convention: str = "geoaware",
        threshold: str = "bbox",
        alphas: Sequence[float] = (0.01, 0.05, 0.1, 0.15),
    ) -> None:
        flags, geo_groups = data.facts.get("flags"), data.facts.get("geo_groups")
        if convention not in CONVENTIONS:
            raise ValueError(f"benchmark.convention must be one of {sorted(CONVENTIONS)}, got '{convention}'")
        if threshold not in THRESHOLDS:
            raise ValueError(f"benchmark.threshold must be one of {THRESHOLDS}, got '{threshold}'")
        self.alphas = [float(a) for a in alphas]
        self.convention = convention
        self.threshold = threshold
        self.strict = CONVENTIONS[convention]["strict"]
        self.pred_side = 1 if CONVENTIONS[convention]["direction"] == "source_to_target" else 0
        self.flags = {k: tuple(v) for k, v in (flags or {}).items()}
        self.geo_groups = dict(geo_groups) if geo_groups is not None else None
        where = f"image {self.pred_side} ({'target' if self.pred_side else 'source'})"
        spec = {
            "benchmark": name,
            "protocol": "semantic_pck",
            "dataset": data.dataset,
            "split": data.split,
            "resize": data.resize,
            "convention": convention,
            "convention_description": CONVENTIONS[convention]["description"],
            "direction": CONVENTIONS[convention]["direction"],
            "query_image": 1 - self.pred_side,
            "prediction_image": self.pred_side,
            "threshold_base": f"max(w, h) of the bbox of {where}" if threshold == "bbox" else f"max(H, W) of {where}",
            "comparison": "error < alpha * L" if self.strict else "error <= alpha * L",
            "alphas": self.alphas,
            "pixel_convention": "pixel centres at integer coordinates; errors and L in original-image pixels",
            "aggregation": "pck@a: per pair fraction of correct keypoints, mean over pairs; pck_kpt@a: over all keypoints; "
            "a keypoint without a prediction (NaN) is wrong",
            "geo_aware": "keypoints whose GeoAware-SC group has >= 2 members visible in the prediction image; "
            "geo/pck@a averages over the pairs having one"
            if self.geo_groups is not None
            else None,
            **data.extra_spec,
        }
        groups = ["all", *(group_key("category", c) for c in sorted(set(data.facts["categories"])))]
        groups += [group_key(flag, v) for flag, values in self.flags.items() for v in values]
        groups += ["geo"] if self.geo_groups is not None else []
        super().__init__(spec, data.pair_names, groups, main_metric, mode)

    @property
    def prediction_kind(self) -> str:
        return f"transfer_query{1 - self.pred_side}"

    def make_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict({"pck": SemanticPCK(self.alphas, strict=self.strict)})

    def predict(self, module: Any, batch: dict) -> Matches:
        """Transfer the query keypoints with `module.transfer`; the matches pair every valid query keypoint
        (in its image) with its prediction (in the other image), in slot order, NaN where none."""
        valid = batch["kpts_valid"].bool()
        if self.pred_side == 1:
            kpts0, kpts1 = batch["kpts0"], module.transfer(batch, batch["kpts0"])
        else:
            kpts0, kpts1 = module.transfer(swap_sides(batch), batch["kpts1"]), batch["kpts1"]
        batch_idx = valid.nonzero()[:, 0]
        return Matches(
            kpts0[valid].float(), kpts1[valid].float(), torch.ones(len(batch_idx), device=valid.device), batch_idx
        )

    @staticmethod
    def frame(batch: dict, side: int, b: int) -> tuple[Tensor, Tensor | None]:
        """Scale and (centred letterbox) offset of image `side` of pair b: batch pixels -> original pixels."""
        offset = batch.get(f"offset{side}")
        return batch[f"scale{side}"][b].double().cpu(), None if offset is None else offset[b].double().cpu()

    def threshold_base(self, batch: dict, b: int) -> float:
        """L in original pixels of the prediction image."""
        side = self.pred_side
        if self.threshold == "image":
            return float(batch[f"size{side}"][b].max())
        corners = to_original(batch[f"bbox{side}"][b].double().cpu().reshape(2, 2), *self.frame(batch, side, b))
        return float((corners[1] - corners[0]).max())

    def errors(self, batch: dict, b: int, matches: Matches) -> Tensor:
        """Distances (original pixels) between predicted and annotated keypoints of pair b; inf without a prediction."""
        side = self.pred_side
        valid = batch["kpts_valid"][b].bool()
        frame = self.frame(batch, side, b)
        gt = to_original(batch[f"kpts{side}"][b][valid].double().cpu(), *frame)
        predicted = to_original((matches.kpts1 if side == 1 else matches.kpts0).double().cpu(), *frame)
        return torch.nan_to_num((predicted - gt).norm(dim=-1), nan=float("inf"))

    def update(self, batch: dict, matches: Matches) -> list[dict[str, Any]]:
        records = [self.score_pair(batch, b, matches.pair(b)) for b in range(batch["image0"].shape[0])]
        self.records.extend(records)
        return records

    def score_pair(self, batch: dict, b: int, matches: Matches) -> dict[str, Any]:
        errors = self.errors(batch, b, matches)
        L = self.threshold_base(batch, b)
        category = batch["category"][b]
        flag_values = {flag: int(batch[flag][b]) for flag in self.flags}
        names = ["all", group_key("category", category)]
        for flag, value in flag_values.items():
            if value not in self.flags[flag]:
                raise ValueError(f"pair {batch['name'][b]}: {flag}={value}, expected one of {self.flags[flag]}")
            names.append(group_key(flag, value))
        for name in names:
            self.groups[name]["pck"].update(errors, L)
            self.groups[name]["num_pairs"].update(1.0)
        num_geo = 0
        if self.geo_groups is not None:
            ids = batch["kpts_valid"][b].bool().nonzero()[:, 0].cpu().numpy()
            visible = batch[f"kpts_visible{self.pred_side}"][b].bool().cpu().numpy()
            geo = torch.from_numpy(geo_aware_mask(self.geo_groups.get(category, ()), ids, visible))
            num_geo = int(geo.sum())
            if num_geo:
                self.groups["geo"]["pck"].update(errors[geo], L)
                self.groups["geo"]["num_pairs"].update(1.0)
        pck = (
            SemanticPCK.correct(errors, L, self.alphas, self.strict).double().mean(0)
            if len(errors)
            else [float("nan")] * len(self.alphas)
        )
        return {
            "name": batch["name"][b],
            "category": category,
            **flag_values,
            "num_keypoints": len(errors),
            "num_geo_aware": num_geo,
            "threshold_px": L,
            "num_unpredicted": int((~torch.isfinite(errors)).sum()),
            "mean_error_px": float(errors[torch.isfinite(errors)].mean())
            if torch.isfinite(errors).any()
            else float("nan"),
            **{f"pck@{a:g}": float(v) for a, v in zip(self.alphas, pck)},
        }
