"""NCNet as Patch2Pix uses it (Rocco et al., NeurIPS 2018; stride-8 ResNet-34, 4-D max-pool relocalisation): the
patch-level matcher alone, the NCNet baseline row, and its weakly-supervised pre-training (experiment=ncnet_pretrain)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from corrlab.losses.ncnet_weak import NCNetWeakLoss
from corrlab.matches import Matches
from corrlab.models.patch2pix.network import Patch2PixNet
from corrlab.models.patch2pix.official import load_official_ncnet
from corrlab.models.patch2pix.pipeline import (
    coarse_proposals,
    freeze,
    network_frame,
    to_batch_pixels,
    warn_random_backbone,
)
from corrlab.modules.base import MatchingModule


class NCNet(MatchingModule):
    """Matches: mutual coarse matches whose softmax score > ncn_thres (all mutual matches if none passes), at the
    stride-8 grid relocalised by the `pool` max-pool, in batch pixels.

    Training: NCNet's weak loss on the consensus filter with `train_pool` (1 = no pooling, as NCNet's train.py);
    the backbone stays frozen and in eval mode.
    """

    requires_weights = True

    def __init__(
        self,
        backbone: dict | None = None,
        max_side: int | None = 1024,
        pool: int = 2,
        train_pool: int = 1,
        ncn_thres: float = 0.9,
        loss: nn.Module | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, scheduler=scheduler)
        self.save_hyperparameters(ignore=["loss", "optimizer", "scheduler"], logger=False)
        self.net = Patch2PixNet(regressors=False, pool=pool)
        self.loss = loss if loss is not None else NCNetWeakLoss()
        backbone_weights = (backbone or {}).get("weights")
        if backbone_weights:
            self.net.backbone.load_imagenet(backbone_weights)
            self.note_weights(backbone_weights, "torchvision ResNet-34 ImageNet state_dict", "model.backbone.weights")
        freeze(self.net.backbone)
        self.pretrained_backbone = bool(backbone_weights)
        self.max_side, self.multiple = max_side, self.net.stride * pool
        self.train_pool, self.ncn_thres = train_pool, ncn_thres

    def load_official(self, path: str | Path) -> None:
        load_official_ncnet(self.net, path)
        self.note_weights(path, "official NCNet checkpoint (ncn_ivd_5ep.pth)")

    def on_fit_start(self) -> None:
        if not self.pretrained_backbone:
            warn_random_backbone("NCNet")

    def train(self, mode: bool = True) -> NCNet:
        super().train(mode)
        self.net.backbone.eval()
        return self

    @torch.no_grad()
    def match(self, batch: dict) -> Matches:
        images0, images1, scale0, scale1 = network_frame(batch, self.max_side, self.multiple)
        levels0, levels1 = self.net.features(images0), self.net.features(images1)
        parts = []
        for b, (coarse, scores) in enumerate(coarse_proposals(self.net, levels0, levels1, self.ncn_thres)):
            kpts0, kpts1 = to_batch_pixels(coarse, scale0, scale1)
            parts.append(Matches(kpts0, kpts1, scores, torch.full((len(coarse),), b, device=coarse.device)))
        return Matches.concat(parts)

    def compute_losses(self, batch: dict) -> dict[str, Tensor]:
        if batch["image0"].shape[0] < 2:
            raise ValueError("NCNet's weak loss builds negatives from other pairs of the batch: use a batch size >= 2")
        images0, images1, _, _ = network_frame(batch, self.max_side, self.multiple)
        with torch.no_grad():
            coarse0, coarse1 = self.net.features(images0)[-1], self.net.features(images1)[-1]
        positive, _ = self.net.correlate(coarse0, coarse1, pool=self.train_pool)
        negative, _ = self.net.correlate(coarse0.roll(-1, dims=0), coarse1, pool=self.train_pool)
        return self.loss(positive, negative)
