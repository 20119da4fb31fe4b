"""Test-only variants of the tiny matcher: non-finite losses/gradients on chosen steps, recorded dtypes."""

from __future__ import annotations

import torch

from corrlab.losses.pixel_ap import NeighbourSampler, PixelAPLoss
from tests.helpers.tiny_matcher import TinyMatcher

DESCRIPTOR_TO_IMAGE = torch.tensor([[4.0, 0.0, 1.5], [0.0, 4.0, 1.5], [0.0, 0.0, 1.0]])  # TinyMatcher.grid


class FlakyMatcher(TinyMatcher):
    """NaN loss at the optimizer steps in `nan_loss_steps`; finite loss with NaN gradients at those in
    `nan_grad_steps` (sqrt at 0 in the graph); records the dtype of the network output."""

    def __init__(self, nan_loss_steps=(), nan_grad_steps=(), **kwargs) -> None:
        super().__init__(**kwargs)
        self.nan_loss_steps = set(nan_loss_steps)
        self.nan_grad_steps = set(nan_grad_steps)
        self.compute_dtypes: list[torch.dtype] = []

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        self.compute_dtypes.append(self.net(batch["image0"]).dtype)
        losses = super().compute_losses(batch)
        step = self.trainer.global_step
        if step in self.nan_loss_steps:
            losses = {"total": losses["total"] * float("nan"), "nce": losses["nce"] * float("nan")}
        if step in self.nan_grad_steps:
            losses["total"] = losses["total"] + (self.net[0].weight.sum() * 0).sqrt()
        return losses


class OverflowingAPMatcher(TinyMatcher):
    """PUMP's pixel AP loss on the tiny matcher's descriptors; at the optimizer steps in `overflow_steps` the
    first layer's output overflows to inf (as after a step with an absurd learning rate), so NaN scores are
    born in the forward pass."""

    def __init__(self, overflow_steps=(), **kwargs) -> None:
        super().__init__(**kwargs)
        self.overflow_steps = set(overflow_steps)
        sampler = NeighbourSampler(neighbourhood=3, pos_radius=1, neg_radius=2, border=3, query_step=2)
        self.ap_loss = PixelAPLoss(sampler=sampler)

    def describe(self, image: torch.Tensor) -> torch.Tensor:
        features = self.net[0](image)
        if self._trainer is not None and self.trainer.global_step in self.overflow_steps:
            features = features * 1e38 * 1e38
        return torch.nn.functional.normalize(self.net[2](self.net[1](features)), dim=1)

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        d0, d1 = self.describe(batch["image0"]), self.describe(batch["image1"])
        scale = DESCRIPTOR_TO_IMAGE.to(d0)
        homographies = torch.linalg.inv(scale) @ batch["H_0to1"] @ scale
        total = self.ap_loss(d0, d1, homographies)
        return {"total": total, "ap": total.detach()}
