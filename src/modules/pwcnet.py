"""PWC-Net and PWC-Net-GOCor (`gocor: true`): dense flow matching, official checkpoints, synthetic-flow training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from corrlab.losses.multiscale_epe import MultiScaleEPE
from corrlab.models.dense_flow.official import PWCNET_RULES
from corrlab.models.pwcnet.pwcnet import PWCNet, PWCNetConfig, estimate_flow
from corrlab.modules.dense_flow import DenseFlowMatcher

PWCNET_LEVEL_WEIGHTS = (0.32, 0.08, 0.02, 0.01, 0.005)  # PWC-Net paper: levels 6 .. 2


class PWCNetMatcher(DenseFlowMatcher):
    official_rules = PWCNET_RULES

    def __init__(
        self,
        gocor: bool = False,
        local_optim_iter: int = 3,
        div: float = 20.0,
        level_weights: tuple[float, ...] = PWCNET_LEVEL_WEIGHTS,
        apply_mask: bool = False,
        certainty: str = "cyclic_consistency",
        sampler: dict | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(certainty=certainty, sampler=sampler, optimizer=optimizer, scheduler=scheduler)
        self.save_hyperparameters(logger=False)
        self.net = PWCNet(PWCNetConfig(gocor, local_optim_iter, div))
        self.loss = MultiScaleEPE(tuple(level_weights))
        self.apply_mask = apply_mask

    def estimate_flow(self, source: Tensor, target: Tensor) -> Tensor:
        return estimate_flow(self.net, source, target)

    def compute_losses(self, batch: dict) -> dict[str, Tensor]:
        """The PWC-Net paper's multi-scale loss (DenseMatching has no PWC-Net recipe): at levels 6..2 the EPE to the
        GT divided by `div` and resized to the level without rescaling (every level predicts full-resolution pixels
        / div), summed over pixels per image (the loss GLU-Net uses too); images used at their size (multiples of
        64), BGR as at inference."""
        target, source = batch["image0"], batch["image1"]
        h, w = target.shape[-2:]
        if h % 64 or w % 64:
            raise ValueError(f"PWC-Net training images must be multiples of 64, got {h}x{w}")
        flows = self.net(target[:, [2, 1, 0]], source[:, [2, 1, 0]])
        gt = batch["flow"].permute(0, 3, 1, 2) / self.net.cfg.div
        valid = batch["flow_valid"].bool() if self.apply_mask else None
        return self.loss(flows, [gt] * len(flows), [valid] * len(flows))
