"""Dense-flow protocol (GLU-Net / DenseMatching run_evaluation_generic): AEPE and PCK-1/3/5 per image and pooled,
over the valid ground-truth pixels of image 0."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from corrlab.benchmarks.base import Benchmark, BenchmarkData
from corrlab.dense_sampling import sample_warp, warp_frame_for
from corrlab.matches import Matches
from corrlab.metrics import EndpointError

CHUNK = 4096  # query pixels per nearest-match lookup (sparse methods)


def nearest_match_transfer(matches: Matches, queries: Tensor) -> Tensor:
    """Positions in image 1 of image-0 queries (Q, 2): the displacement of the match whose image-0 point is
    nearest (MatchingModule.transfer's rule for sparse methods); NaN without matches."""
    if len(matches) == 0:
        return torch.full_like(queries, float("nan"))
    out = torch.empty_like(queries)
    kpts0, shift = matches.kpts0.to(queries), (matches.kpts1 - matches.kpts0).to(queries)
    for start in range(0, len(queries), CHUNK):
        chunk = queries[start : start + CHUNK]
        out[start : start + CHUNK] = chunk + shift[torch.cdist(chunk, kpts0).argmin(dim=1)]
    return out


class DenseFlowBenchmark(Benchmark):
    """Scores the warp of image 0 into image 1 against the ground-truth flow of the batch.

    Ground truth (batch keys): `flow` (B, H0, W0, 2), the displacement (x, y) from each pixel p of image 0 to its
    position p + flow in image 1, in batch pixels, and `flow_valid` (B, H0, W0) where it exists.  This is
    `Matches.warp - grid`; data=hpatches_dense puts DenseMatching's target image as image 0, so the flow is
    DenseMatching's target-to-source flow.  EPE = ||warp(p) - (p + flow(p))|| over valid pixels, in batch
    pixels (the evaluated frame: original or 240 x 240 for HPatches).  A method without a warp is read through
    its nearest match (as `transfer`); a missing prediction (NaN) has an infinite error.
    aepe: mean over images of the per-image mean EPE; pck@t: mean over images of the per-image fraction with
    EPE <= t; pck_pooled@t: over every valid pixel of the split (DenseMatching's "per dataset").
    """

    prediction_kind = "dense_warp"  # the prediction cache keeps the warp for it
    scores_warp = True
    required_ground_truth = ("flow", "flow_valid")

    def __init__(
        self,
        data: BenchmarkData,
        name: str = "dense_flow",
        thresholds_px: Sequence[float] = (1, 3, 5),
        main_metric: str = "aepe",
        mode: str = "min",
    ) -> None:
        self.thresholds = list(thresholds_px)
        self._group_of = data.group_of
        spec = {
            "benchmark": name,
            "protocol": "dense_flow",
            "dataset": data.dataset,
            "split": data.split,
            "resize": data.resize,
            "direction": "image 0 warped into image 1: flow on the image-0 grid (DenseMatching: target -> source)",
            "pixel_convention": "pixel centres at integer coordinates; errors in batch pixels (the evaluated frame)",
            "error": "end-point error ||warp(p) - (p + flow(p))|| at the valid ground-truth pixels p of image 0",
            "thresholds_px": self.thresholds,
            "aggregation": "aepe and pck@t: per image, then mean over images; pck_pooled@t: over all valid pixels",
            "sparse_methods": "a method without a dense warp is read through the displacement of its nearest match",
            "failure": "a pixel without a prediction (NaN) has an infinite error",
            **data.extra_spec,
        }
        super().__init__(spec, data.pair_names, data.groups, main_metric, mode)

    def make_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict({"epe": EndpointError(self.thresholds)})

    def group_of(self, name: str) -> str | None:
        return self._group_of(name) if self._group_of else None

    def predicted_positions(self, batch: dict, b: int, matches: Matches, pixels: Tensor) -> Tensor:
        """Image-1 positions (P, 2) predicted for image-0 pixels (P, 2) of pair b."""
        if matches.warp is None:
            return nearest_match_transfer(matches, pixels)
        frame = warp_frame_for(matches, tuple(batch["image0"].shape[-2:]))
        if tuple(matches.warp.shape[1:3]) == frame:  # one cell per pixel: read it (bilinear would spread NaNs)
            x, y = pixels.long().unbind(-1)
            return matches.warp[0, y, x].to(pixels)
        return sample_warp(matches.warp.float(), pixels[None].float(), frame)[0].to(pixels)

    def score_pair(self, batch: dict, b: int, matches: Matches) -> dict[str, Any]:
        name = batch["name"][b]
        valid = batch["flow_valid"][b].bool()
        ys, xs = torch.nonzero(valid, as_tuple=True)
        pixels = torch.stack([xs, ys], dim=-1).double()
        target = pixels + batch["flow"][b][valid].double()
        predicted = self.predicted_positions(batch, b, matches, pixels.to(valid.device)).double().cpu()
        epe = (predicted - target.cpu()).norm(dim=-1)
        epe = torch.nan_to_num(epe, nan=float("inf"))
        for metrics in self.metrics_for(name):
            metrics["epe"].update(epe)
        record = {"name": name, "group": self.group_of(name), "num_pixels": len(epe)}
        if len(epe):
            record["aepe"] = float(epe.mean())
            record.update({f"pck@{t:g}": float((epe <= t).double().mean()) for t in self.thresholds})
        return record
