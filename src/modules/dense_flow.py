"""Shared evaluation path of the dense flow methods (GLU-Net, PWC-Net and their GOCor variants): the flow of image 0
(target grid) into image 1 (source) becomes the dense warp; its certainty is the forward-backward cyclic consistency
1 / (1 + |F_01(p) + F_10(p + F_01(p))|) of DenseMatching's `inv_cyclic_consistency_error`; sparse matches are drawn
from warp + certainty by the shared DenseSampler."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from corrlab.dense_sampling import DenseSampler
from corrlab.matches import Matches
from corrlab.models.dense_flow.official import load_official_weights
from corrlab.models.dense_flow.warping import pixel_grid, warp
from corrlab.modules.base import MatchingModule

CERTAINTIES = ("cyclic_consistency", "none")


class DenseFlowMatcher(MatchingModule):
    """Subclasses set `self.net`, `self.official_rules` and implement `estimate_flow(source, target)`."""

    official_rules: list[tuple[str, str]] = []

    def __init__(
        self,
        certainty: str = "cyclic_consistency",
        sampler: dict | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, scheduler=scheduler)
        if certainty not in CERTAINTIES:
            raise ValueError(f"certainty must be one of {CERTAINTIES}, got '{certainty}'")
        self.certainty = certainty
        self.sampler = DenseSampler(**(sampler or {}))
        self.net: nn.Module

    def estimate_flow(self, source: Tensor, target: Tensor) -> Tensor:
        """(B, 2, Ht, Wt) flow on the target grid into the source, images (B, 3, H, W) in [0, 1]."""
        raise NotImplementedError

    def dense(self, image0: Tensor, image1: Tensor) -> tuple[Tensor, Tensor]:
        """warp (B, H0, W0, 2) of image 0 into image 1 and its certainty (B, H0, W0)."""
        flow = self.estimate_flow(source=image1, target=image0)
        b, _, h, w = flow.shape
        mapping = pixel_grid(b, h, w, flow.device, flow.dtype) + flow
        if self.certainty == "none":
            certainty = torch.ones(b, h, w, dtype=flow.dtype, device=flow.device)
        else:
            backward = self.estimate_flow(source=image0, target=image1)  # on image 1's grid
            error = torch.linalg.vector_norm(flow + warp(backward, flow), dim=1)
            certainty = 1.0 / (1.0 + error)
        return mapping.permute(0, 2, 3, 1), certainty

    @torch.no_grad()
    def match(self, batch: dict) -> Matches:
        was_training = self.net.training
        self.net.eval()
        try:
            warp_field, certainty = self.dense(batch["image0"], batch["image1"])
        finally:
            self.net.train(was_training)
        empty = Matches.empty(warp_field.device)
        dense = Matches(empty.kpts0, empty.kpts1, empty.scores, empty.batch_idx, warp=warp_field, certainty=certainty)
        sparse = self.sampler(dense, tuple(batch["image0"].shape[-2:]), tuple(batch["image1"].shape[-2:]))
        return Matches(
            sparse.kpts0, sparse.kpts1, sparse.scores, sparse.batch_idx, warp=warp_field, certainty=certainty
        )

    def load_official(self, path: str | Path) -> None:
        load_official_weights(self.net, path, self.official_rules)
