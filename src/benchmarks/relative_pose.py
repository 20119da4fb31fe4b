"""Relative-pose protocol (MegaDepth-1500): pose AUC from an OpenCV essential matrix per pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from corrlab.benchmarks.base import Benchmark
from corrlab.geometry.pose import estimate_relative_pose, relative_pose_error
from corrlab.matches import Matches
from corrlab.metrics import ErrorAUC, MeanValue


class RelativePoseBenchmark(Benchmark):
    """Per pair: E from the matches (cv2.findEssentialMat, RANSAC, on K-normalised points, threshold
    `threshold_px` / mean focal of both cameras, confidence 0.99999), the candidate whose recoverPose
    keeps most points, error = max(angle(R), angle(t)) in degrees with t's sign folded.  Fewer than 5
    matches or no solution is an infinite error.  Reported: pose_auc@t (SuperGlue/LoFTR AUC, as a
    fraction), pose_acc@t, the mean number of matches and of RANSAC inliers.  Everything happens in
    the evaluation frame (batch pixels, K scaled with the images), as LoFTR and glue-factory do.
    """

    def __init__(
        self,
        name: str,
        split: str,
        pair_names: Sequence[str],
        resize: dict[str, Any],
        thresholds_deg: Sequence[float] = (5, 10, 20),
        ransac_threshold_px: float = 0.5,
        ransac_confidence: float = 0.99999,
        seed: int = 0,
        extra_spec: dict[str, Any] | None = None,
    ) -> None:
        self.thresholds = list(thresholds_deg)
        self.ransac = dict(threshold_px=ransac_threshold_px, confidence=ransac_confidence, seed=seed)
        spec = {
            "protocol": "relative_pose",
            "dataset": name,
            "split": split,
            "resize": resize,
            "pixel_convention": "pixel centres at integer coordinates; K converted from COLMAP's corner convention (c - 0.5) and scaled with the image",
            "estimator": {
                "method": "cv2.findEssentialMat (RANSAC) on K-normalised points + cv2.recoverPose, best of the E candidates",
                "threshold_px": ransac_threshold_px,
                "threshold_normalised": "threshold_px / mean(fx0, fy0, fx1, fy1) in the evaluation frame",
                "confidence": ransac_confidence,
                "seed": seed,
                "repeats": 1,
            },
            "error": "max(rotation angle, translation direction angle) in degrees; t folded to min(e, 180 - e)",
            "failure": "fewer than 5 matches or no essential matrix: infinite error",
            "thresholds_deg": self.thresholds,
            "aggregation": "AUC of the cumulative error curve up to each threshold (trapezoid, SuperGlue / LoFTR), over pairs",
            **(extra_spec or {}),
        }
        super().__init__(spec, pair_names)

    def make_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict(
            {
                "pose": ErrorAUC(self.thresholds, "pose_auc", "pose_acc"),
                "num_matches": MeanValue("num_matches"),
                "num_inliers": MeanValue("num_inliers"),
            }
        )

    def score_pair(self, batch: dict, b: int, matches: Matches) -> dict[str, Any]:
        K0, K1, T = (batch[k][b].double().cpu() for k in ("K0", "K1", "T_0to1"))
        estimate = estimate_relative_pose(
            matches.kpts0.double().cpu(), matches.kpts1.double().cpu(), K0, K1, **self.ransac
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
