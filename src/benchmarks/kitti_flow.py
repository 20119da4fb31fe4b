"""KITTI optical flow protocol (DenseMatching's run_evaluation_kitti, KITTI devkit outliers): AEPE per image then
averaged over images, and Fl = % of outlier pixels (EPE > 3 px and > 5 % of |GT|) pooled over the split."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from corrlab.benchmarks.base import BenchmarkData
from corrlab.benchmarks.dense_flow import DenseFlowBenchmark
from corrlab.matches import Matches
from corrlab.metrics import EndpointError, FlowOutlierRate
from corrlab.metrics.flow_outliers import ABSOLUTE_PX, RELATIVE, flow_outliers


class KITTIFlowBenchmark(DenseFlowBenchmark):
    """DenseFlowBenchmark's end-point errors at the valid GT pixels of image 0 (<id>_10), plus Fl.

    aepe: mean over images of the per-image mean EPE (DenseMatching's AEPE); fl: 100 x outliers / valid pixels over
    the split pooled (DenseMatching's `kitti-fl`, the devkit's Fl); per pair: aepe, fl and pck@t."""

    def __init__(
        self,
        data: BenchmarkData,
        name: str = "kitti",
        thresholds_px=(1, 3, 5),
        main_metric: str = "fl",
        mode: str = "min",
    ) -> None:
        super().__init__(data, name, thresholds_px, main_metric, mode)
        self._spec.update(
            protocol="kitti_flow",
            outlier=f"EPE > {ABSOLUTE_PX:g} px and EPE / |GT flow| > {RELATIVE:g} (KITTI devkit)",
            aggregation="aepe: per image, then mean over images; fl: % outliers over all valid pixels of the split; "
            "pck@t per image then mean, pck_pooled@t over all pixels",
        )

    def make_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict({"epe": EndpointError(self.thresholds), "fl": FlowOutlierRate()})

    def score_pair(self, batch: dict, b: int, matches: Matches) -> dict[str, Any]:
        name = batch["name"][b]
        valid = batch["flow_valid"][b].bool()
        ys, xs = torch.nonzero(valid, as_tuple=True)
        pixels = torch.stack([xs, ys], dim=-1).double()
        gt = batch["flow"][b][valid].double()
        predicted = self.predicted_positions(batch, b, matches, pixels.to(valid.device)).double().cpu()
        epe = torch.nan_to_num((predicted - (pixels + gt).cpu()).norm(dim=-1), nan=float("inf"))
        magnitude = gt.cpu().norm(dim=-1)
        for metrics in self.metrics_for(name):
            metrics["epe"].update(epe)
            metrics["fl"].update(epe, magnitude)
        record = {"name": name, "group": self.group_of(name), "num_pixels": len(epe)}
        if len(epe):
            record["aepe"] = float(epe.mean())
            record["fl"] = 100.0 * float(flow_outliers(epe, magnitude).double().mean())
            record.update({f"pck@{t:g}": float((epe <= t).double().mean()) for t in self.thresholds})
        return record
