"""Homography protocol (HPatches, synthetic pairs): MMA, symmetric precision, homography accuracy/AUC."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from corrlab.benchmarks.base import Benchmark
from corrlab.datamodules.resize import ResizePolicy
from corrlab.geometry.homography import corner_error, estimate_homography, symmetric_transfer_error, transfer_error
from corrlab.geometry.scaling import homography_to_original, homography_to_resized, to_original, to_resized
from corrlab.matches import Matches
from corrlab.metrics import ErrorAUC, MeanValue, ThresholdAccuracy


class HomographyBenchmark(Benchmark):
    """Scores matches against a known homography, in original-image pixels or, with `error_frame`, in
    the frame that resize policy gives each original image (e.g. short side 480, glue-factory).

    - mma@t (t = 1..10): per pair, the fraction of matches with one-directional error ||H p0 - p1||
      <= t (the D2-Net protocol), then averaged over pairs.
    - prec_sym@t (t = 1, 3): the same with the symmetric transfer error (glue-factory).
    - hacc@t / hauc@t (t = 1, 3, 5, 10): from the mean corner error of a RANSAC homography.
    A pair without matches scores 0 and an infinite homography error.
    """

    def __init__(
        self,
        name: str,
        split: str,
        pair_names: Sequence[str],
        resize: dict[str, Any],
        groups: Sequence[str] = ("all",),
        group_of: Callable[[str], str | None] | None = None,
        mma_thresholds: Sequence[float] = tuple(range(1, 11)),
        precision_thresholds: Sequence[float] = (1, 3),
        homography_thresholds: Sequence[float] = (1, 3, 5, 10),
        ransac_threshold: float = 2.0,
        ransac_max_iters: int = 2000,
        ransac_confidence: float = 0.995,
        seed: int = 0,
        error_frame: ResizePolicy | None = None,
        extra_spec: dict[str, Any] | None = None,
    ) -> None:
        self.error_frame = error_frame
        self.mma_thresholds = list(mma_thresholds)
        self.precision_thresholds = list(precision_thresholds)
        self.homography_thresholds = list(homography_thresholds)
        self.ransac = dict(
            threshold=ransac_threshold, max_iters=ransac_max_iters, confidence=ransac_confidence, seed=seed
        )
        self._group_of = group_of
        spec = {
            "protocol": "homography",
            "dataset": name,
            "split": split,
            "resize": resize,
            "pixel_convention": "pixel centres at integer coordinates; a resize by s maps x to (x + 0.5) * s - 0.5",
            "error_frame": "original image pixels" if error_frame is None else {"resize": error_frame.describe()},
            "mma": {"thresholds": self.mma_thresholds, "error": "||H p0 - p1|| in image 1 (one-directional, D2-Net)"},
            "prec_sym": {
                "thresholds": self.precision_thresholds,
                "error": "mean of forward and backward transfer errors",
            },
            "homography": {
                "estimator": "cv2.findHomography RANSAC",
                "threshold_px": ransac_threshold,
                "max_iters": ransac_max_iters,
                "confidence": ransac_confidence,
                "seed": seed,
                "error": "mean distance of the 4 corner pixel centres of image 0, estimated vs GT",
                "thresholds": self.homography_thresholds,
            },
            "aggregation": "mean over pairs; a pair without matches has accuracy 0 and homography error inf",
            **(extra_spec or {}),
        }
        super().__init__(spec, pair_names, groups)

    def make_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict(
            {
                "mma": ThresholdAccuracy(self.mma_thresholds, "mma"),
                "prec_sym": ThresholdAccuracy(self.precision_thresholds, "prec_sym"),
                "homography": ErrorAUC(self.homography_thresholds, "hauc", "hacc"),
                "num_matches": MeanValue("num_matches"),
            }
        )

    def group_of(self, name: str) -> str | None:
        return self._group_of(name) if self._group_of else None

    def score_pair(self, batch: dict, b: int, matches: Matches) -> dict[str, Any]:
        name = batch["name"][b]
        scale0, scale1 = batch["scale0"][b].double().cpu(), batch["scale1"][b].double().cpu()
        H = homography_to_original(batch["H_0to1"][b].double().cpu(), scale0, scale1)
        if not torch.isfinite(H).all():
            raise ValueError(f"pair {name}: its ground-truth homography is not finite: {H.tolist()}")
        kpts0 = to_original(matches.kpts0.double().cpu(), scale0)
        kpts1 = to_original(matches.kpts1.double().cpu(), scale1)
        height, width = (int(v) for v in batch["size0"][b])
        if self.error_frame is not None:
            frame0 = self.error_frame.scale(height, width)
            frame1 = self.error_frame.scale(*(int(v) for v in batch["size1"][b]))
            H = homography_to_resized(H, frame0, frame1)
            kpts0, kpts1 = to_resized(kpts0, frame0), to_resized(kpts1, frame1)
            height, width = self.error_frame.output_size(height, width)
        one_way = transfer_error(H, kpts0, kpts1)
        symmetric = symmetric_transfer_error(H, kpts0, kpts1)
        H_est = estimate_homography(kpts0, kpts1, **self.ransac)
        h_error = corner_error(H_est, H, height, width)
        for metrics in self.metrics_for(name):
            metrics["mma"].update(one_way)
            metrics["prec_sym"].update(symmetric)
            metrics["homography"].update(torch.tensor([h_error]))
            metrics["num_matches"].update(float(len(matches)))
        mma = ThresholdAccuracy.pair_accuracy(one_way, self.mma_thresholds)
        prec = ThresholdAccuracy.pair_accuracy(symmetric, self.precision_thresholds)
        return {
            "name": name,
            "group": self.group_of(name),
            "num_matches": len(matches),
            **{f"mma@{t:g}": float(v) for t, v in zip(self.mma_thresholds, mma)},
            **{f"prec_sym@{t:g}": float(v) for t, v in zip(self.precision_thresholds, prec)},
            "h_error": h_error,
        }
