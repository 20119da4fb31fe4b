"""Test-only variants of the tiny matcher: non-finite losses/gradients on chosen steps, recorded dtypes."""

from __future__ import annotations

import torch

from tests.helpers.tiny_matcher import TinyMatcher


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
