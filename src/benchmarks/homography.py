"""Homography protocols (HPatches D2-Net and IME, synthetic pairs): MMA, symmetric precision, homography accuracy/AUC."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchmetrics.aggregation import MeanMetric

from corrlab.benchmarks import ime
from corrlab.benchmarks.base import Benchmark, BenchmarkData
from corrlab.geometry.estimators import HomographyEstimator
from corrlab.geometry.homography import corner_error, symmetric_transfer_error, transfer_error
from corrlab.geometry.scaling import homography_to_original, homography_to_resized, to_original, to_resized
from corrlab.matches import Matches
from corrlab.metrics import ErrorAUC, ThresholdAccuracy


class HomographyBenchmark(Benchmark):
    """Scores matches against a known homography, in original-image pixels or, with the data's `error_frame`
    fact, in the frame that resize policy gives each original image (e.g. short side 480, glue-factory).

    - mma@t (t = 1..10): per pair, the fraction of matches with one-directional error ||H p0 - p1||
      <= t (the D2-Net protocol), then averaged over pairs.
    - prec_sym@t (t = 1, 3): the same with the symmetric transfer error (glue-factory).
    - hacc@t / hauc@t: from the mean corner error of the `estimator`'s homography (conf/benchmark).
    A pair without matches scores 0 and an infinite homography error (no minimum match count).
    `ime_quirks` reproduces IME's evaluation (swapped corners, last pair left out, MMA rounded; see ime.py).
    """

    required_ground_truth = ("H_0to1",)

    def __init__(
        self,
        data: BenchmarkData,
        name: str = "hpatches_mma",
        mma_thresholds: Sequence[float] = tuple(range(1, 11)),
        precision_thresholds: Sequence[float] = (1, 3),
        homography_thresholds: Sequence[float] = (1, 3, 5, 10),
        estimator: HomographyEstimator | None = None,
        ime_quirks: bool = False,
        figure_threshold_px: float = 3.0,
        main_metric: str = "mma@3",
        mode: str = "max",
    ) -> None:
        self.error_frame = data.facts.get("error_frame")
        self.mma_thresholds = list(mma_thresholds)
        self.precision_thresholds = list(precision_thresholds)
        self.homography_thresholds = list(homography_thresholds)
        self.estimator = estimator or HomographyEstimator()
        self.ime_quirks = ime_quirks
        self.left_out = ime.left_out_pair(data.pair_names) if ime_quirks else None
        self._group_of = data.group_of
        corners = "mean distance of the 4 corner pixel centres of image 0, estimated vs GT"
        spec = {
            "benchmark": name,
            "protocol": "homography",
            "dataset": data.dataset,
            "split": data.split,
            "resize": data.resize,
            "pixel_convention": "pixel centres at integer coordinates; a resize by s maps x to (x + 0.5) * s - 0.5",
            "error_frame": "original image pixels"
            if self.error_frame is None
            else {"resize": self.error_frame.describe()},
            "mma": {"thresholds": self.mma_thresholds, "error": "||H p0 - p1|| in image 1 (one-directional, D2-Net)"},
            "prec_sym": {
                "thresholds": self.precision_thresholds,
                "error": "mean of forward and backward transfer errors",
            },
            "homography": {
                "estimator": self.estimator.spec(),
                "error": corners,
                "thresholds": self.homography_thresholds,
            },
            "aggregation": "mean over pairs; a pair without matches has accuracy 0 and homography error inf",
            "ime_quirks": ime.DESCRIPTION if ime_quirks else False,
            **data.extra_spec,
        }
        super().__init__(spec, data.pair_names, data.groups, main_metric, mode)
        self.figure_threshold_px = figure_threshold_px

    def make_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict(
            {
                "mma": ThresholdAccuracy(
                    self.mma_thresholds, "mma", decimals=ime.MMA_DECIMALS if self.ime_quirks else None
                ),
                "prec_sym": ThresholdAccuracy(self.precision_thresholds, "prec_sym"),
                "homography": ErrorAUC(self.homography_thresholds, "hauc", "hacc"),
                "num_matches": MeanMetric().set_dtype(torch.float64),
            }
        )

    def group_of(self, name: str) -> str | None:
        return self._group_of(name) if self._group_of else None

    def metrics_for(self, name: str) -> list[nn.ModuleDict]:
        return [] if name == self.left_out else super().metrics_for(name)

    def score_pair(self, batch: dict, b: int, matches: Matches) -> dict[str, Any]:
        name = batch["name"][b]
        scale0, scale1 = batch["scale0"][b].double().cpu(), batch["scale1"][b].double().cpu()
        H = homography_to_original(batch["H_0to1"][b].double().cpu(), scale0, scale1)
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
        H_est = self.estimator(kpts0, kpts1)
        corners = ime.swapped_corners(height, width) if self.ime_quirks else None
        h_error = corner_error(H_est, H, height, width, corners)
        for metrics in self.metrics_for(name):
            metrics["mma"].update(one_way)
            metrics["prec_sym"].update(symmetric)
            metrics["homography"].update(torch.tensor([h_error]))
            metrics["num_matches"].update(float(len(matches)))
        decimals = ime.MMA_DECIMALS if self.ime_quirks else None
        mma = ThresholdAccuracy.pair_accuracy(one_way, self.mma_thresholds, decimals)
        prec = ThresholdAccuracy.pair_accuracy(symmetric, self.precision_thresholds)
        record = {
            "name": name,
            "group": self.group_of(name),
            "num_matches": len(matches),
            **{f"mma@{t:g}": float(v) for t, v in zip(self.mma_thresholds, mma)},
            **{f"prec_sym@{t:g}": float(v) for t, v in zip(self.precision_thresholds, prec)},
            "h_error": h_error,
        }
        if self.ime_quirks:
            record["in_aggregate"] = name != self.left_out
        return record
