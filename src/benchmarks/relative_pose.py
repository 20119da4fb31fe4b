"""Relative-pose protocol (MegaDepth-1500): pose AUC from an OpenCV essential matrix per pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchmetrics.aggregation import MeanMetric

from corrlab.benchmarks.base import Benchmark, BenchmarkData
from corrlab.geometry.estimators import EssentialEstimator
from corrlab.geometry.pose import estimate_relative_pose, relative_pose_error
from corrlab.matches import Matches
from corrlab.metrics import ErrorAUC


class RelativePoseBenchmark(Benchmark):
    """Per pair: E from the matches (the `estimator`: cv2.findEssentialMat on K-normalised points, threshold
    `threshold_px` / mean focal of both cameras; conf/benchmark/megadepth1500.yaml), the candidate whose recoverPose
    keeps most points, error = max(angle(R), angle(t)) in degrees with t's sign folded.  Fewer than 5
    matches or no solution is an infinite error.  Reported: pose_auc@t (SuperGlue/LoFTR AUC, as a
    fraction), pose_acc@t, the mean number of matches and of RANSAC inliers.  Everything happens in
    the evaluation frame (batch pixels, K scaled with the images), as LoFTR and glue-factory do.
    """

    required_ground_truth = ("K0", "K1", "T_0to1")

    def __init__(
        self,
        data: BenchmarkData,
        name: str = "megadepth1500",
        thresholds_deg: Sequence[float] = (5, 10, 20),
        estimator: EssentialEstimator | None = None,
        figure_threshold_px: float = 3.0,
        main_metric: str = "pose_auc@10",
        mode: str = "max",
    ) -> None:
        self.thresholds = list(thresholds_deg)
        self.estimator = estimator or EssentialEstimator()
        spec = {
            "benchmark": name,
            "protocol": "relative_pose",
            "dataset": data.dataset,
            "split": data.split,
            "resize": data.resize,
            "pixel_convention": "pixel centres at integer coordinates; K converted from COLMAP's corner convention (c - 0.5) and scaled with the image",
            "estimator": self.estimator.spec(),
            "error": "max(rotation angle, translation direction angle) in degrees; t folded to min(e, 180 - e)",
            "failure": "fewer than 5 matches or no essential matrix: infinite error",
            "thresholds_deg": self.thresholds,
            "aggregation": "AUC of the cumulative error curve up to each threshold (trapezoid, SuperGlue / LoFTR), over pairs",
            **data.extra_spec,
        }
        super().__init__(spec, data.pair_names, data.groups, main_metric, mode)
        self.figure_threshold_px = figure_threshold_px

    def make_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict(
            {
                "pose": ErrorAUC(self.thresholds, "pose_auc", "pose_acc"),
                "num_matches": MeanMetric().set_dtype(torch.float64),
                "num_inliers": MeanMetric().set_dtype(torch.float64),
            }
        )

    def score_pair(self, batch: dict, b: int, matches: Matches) -> dict[str, Any]:
        K0, K1, T = (batch[k][b].double().cpu() for k in ("K0", "K1", "T_0to1"))
        e = self.estimator
        estimate = estimate_relative_pose(
            matches.kpts0.double().cpu(),
            matches.kpts1.double().cpu(),
            K0,
            K1,
            e.threshold_px,
            e.confidence,
            e.seed,
            e.method,
        )
        if estimate is None:
            R_err = t_err = error = float("inf")
            inliers = 0
        else:
            R, t, mask = estimate
            R_err, t_err = relative_pose_error(T, R, t)
            error = max(R_err, t_err)
            inliers = int(mask.sum())
        for metrics in self.metrics_for(batch["name"][b]):
            metrics["pose"].update(error)
            metrics["num_matches"].update(float(len(matches)))
            metrics["num_inliers"].update(float(inliers))
        return {
            "name": batch["name"][b],
            "num_matches": len(matches),
            "num_inliers": inliers,
            "R_err": R_err,
            "t_err": t_err,
            "pose_error": error,
        }
