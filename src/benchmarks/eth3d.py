"""ETH3D multi-view protocol (DenseMatching): AEPE and PCK-1/3/5 per rate, per scene and averaged over rates."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from corrlab.benchmarks.base import Benchmark
from corrlab.geometry.scaling import to_original
from corrlab.matches import Matches
from corrlab.metrics import EndpointError

THRESHOLDS = (1, 3, 5)


def pad_points(points: Sequence[Tensor]) -> Tensor:
    """(B, Q_max, 2) from B tensors (Q_b, 2), zero-padded."""
    out = torch.zeros(len(points), max((len(p) for p in points), default=0), 2, dtype=torch.float32)
    for b, p in enumerate(points):
        out[b, : len(p)] = p.float().cpu()
    return out


class ETH3DBenchmark(Benchmark):
    """End-point errors of the transferred ground-truth points, in original source-image pixels.

    Each pair's queries (the rounded target pixels, batch key kpts0) go through
    `module.transfer(batch, kpts0)`; the error is the distance to kpts1.  A query the method cannot
    transfer (NaN: no match at all) has an infinite error.  Aggregation as DenseMatching's
    run_evaluation_eth3d: per scene, AEPE = mean over images of the per-image mean EPE and PCK-k = mean
    over images of the per-image fraction with EPE <= k; per rate, both averaged over scenes with equal
    weight (`rate<r>/aepe`, `rate<r>/pck@k`), plus `rate<r>/pck_pooled@k` over all points of the rate;
    top-level keys average the rates.  `summary()` adds the per-scene values.
    """

    prediction_kind = "transfer_query0"

    def __init__(
        self,
        pair_names: Sequence[str],
        scenes: Sequence[str],
        rates: Sequence[int],
        resize: dict[str, Any],
        extra_spec: dict[str, Any] | None = None,
    ) -> None:
        self.scenes, self.rates = list(scenes), list(rates)
        spec = {
            "protocol": "eth3d_multiview",
            "dataset": "eth3d",
            "rates": self.rates,
            "scenes": self.scenes,
            "resize": resize,
            "direction": "queries on the target image (image0) transferred into the source image (image1): "
            "DenseMatching's target-to-source flow",
            "ground_truth": "target points rounded to their pixel p, source point p + (Xs - Xt, Ys - Yt); duplicates at one pixel keep the last",
            "pixel_convention": "pixel centres at integer coordinates; errors in original source-image pixels",
            "thresholds_px": list(THRESHOLDS),
            "aggregation": "per image, mean over a scene's images, equal-weight mean over scenes per rate (pck@k, aepe); "
            "pck_pooled@k pools every point of a rate; top-level keys average the rates",
            "failure": "a query without a transferred position (NaN) has an infinite error",
            **(extra_spec or {}),
        }
        groups = ["all"] + [f"rate{r}" for r in self.rates] + [f"rate{r}/{s}" for r in self.rates for s in self.scenes]
        super().__init__(spec, pair_names, groups)

    def make_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict({"epe": EndpointError(THRESHOLDS)})

    def metrics_for(self, name: str) -> list[nn.ModuleDict]:
        rate, scene = name.split("/")[:2]
        return [self.groups["all"], self.groups[rate], self.groups[f"{rate}/{scene}"]]

    def predict(self, module: Any, batch: dict) -> Matches:
        """Transfer each pair's valid queries (kpts0) with `module.transfer`: matches pair every query with
        its prediction in image 1, in query order, NaN where the method has none."""
        count = batch["image0"].shape[0]
        queries = [batch["kpts0"][b][batch["kpts_valid"][b]].float() for b in range(count)]
        transferred = module.transfer(batch, pad_points(queries).to(batch["image0"].device)).detach()
        kpts1 = torch.cat([transferred[b, : len(q)].cpu() for b, q in enumerate(queries)])
        batch_idx = torch.cat([torch.full((len(q),), b, dtype=torch.long) for b, q in enumerate(queries)])
        return Matches(torch.cat(queries).cpu(), kpts1, torch.ones(len(batch_idx)), batch_idx)

    def score_pair(self, batch: dict, b: int, matches: Matches) -> dict[str, Any]:
        name = batch["name"][b]
        valid = batch["kpts_valid"][b].cpu()
        scale1 = batch["scale1"][b].double().cpu()
        target = to_original(batch["kpts1"][b].cpu().double()[valid], scale1)
        predicted = to_original(matches.kpts1.double().cpu(), scale1)
        epe = (predicted - target).norm(dim=-1)
        epe = torch.where(torch.isnan(epe), torch.full_like(epe, float("inf")), epe)
        for metrics in self.metrics_for(name):
            metrics["epe"].update(epe)
        rate, scene = name.split("/")[:2]
        record = {"name": name, "rate": int(rate[4:]), "scene": scene, "num_points": len(epe)}
        if len(epe):
            record["aepe"] = float(epe.mean())
            record.update({f"pck@{t}": float((epe <= t).double().mean()) for t in THRESHOLDS})
        return record

    def _group_values(self, group: str) -> dict[str, float] | None:
        """The EndpointError values of a group, None when it has no pair."""
        metrics = self.groups[group]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*called before the ``update`` method")
            pairs = metrics["num_pairs"].compute()["num_pairs"]
            return None if pairs == 0 else {**metrics["epe"].compute(), "num_pairs": pairs}

    def per_scene(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for rate in self.rates:
            for scene in self.scenes:
                values = self._group_values(f"rate{rate}/{scene}")
                if values is not None:
                    out.setdefault(f"rate{rate}", {})[scene] = values
        return out

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        per_rate = []
        for rate, scenes in self.per_scene().items():
            pooled = self._group_values(rate)
            values = {"aepe": sum(s["aepe"] for s in scenes.values()) / len(scenes)}
            for t in THRESHOLDS:
                values[f"pck@{t}"] = sum(s[f"pck@{t}"] for s in scenes.values()) / len(scenes)
                values[f"pck_pooled@{t}"] = pooled[f"pck_pooled@{t}"]
            per_rate.append(values)
            out.update({f"{rate}/{k}": v for k, v in values.items()})
            out[f"{rate}/num_pairs"] = pooled["num_pairs"]
        for key in per_rate[0] if per_rate else []:
            out[key] = sum(v[key] for v in per_rate) / len(per_rate)
        all_pairs = self._group_values("all")
        out["num_pairs"] = 0.0 if all_pairs is None else all_pairs["num_pairs"]
        return out

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "per_scene": self.per_scene()}
