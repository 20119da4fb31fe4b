"""GLU-Net and GLU-Net-GOCor (`gocor: true`): dense flow matching, official checkpoints, synthetic-flow training."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.losses.multiscale_epe import MultiScaleEPE
from corrlab.models.dense_flow.official import GLUNET_RULES
from corrlab.models.glunet.flipping import coarse_score, estimate_flow_with_flipping
from corrlab.models.glunet.glunet import LOW_RES, GLUNet, GLUNetConfig, estimate_flow, preprocess_pair
from corrlab.modules.dense_flow import DenseFlowMatcher


class GLUNetMatcher(DenseFlowMatcher):
    official_rules = GLUNET_RULES

    def __init__(
        self,
        gocor: bool = False,
        global_optim_iter: int = 3,
        local_optim_iter: int = 3,
        iterative_refinement: bool = True,
        flipping_condition: bool = False,
        backbone_weights: str | None = None,
        level_weights: tuple[float, ...] = (0.32, 0.08, 0.02, 0.01),
        apply_mask: bool = False,
        certainty: str = "cyclic_consistency",
        sampler: dict | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(certainty=certainty, sampler=sampler, optimizer=optimizer, scheduler=scheduler)
        self.save_hyperparameters(logger=False)
        self.net = GLUNet(GLUNetConfig(gocor, global_optim_iter, local_optim_iter, iterative_refinement))
        self.backbone_loaded = backbone_weights is not None
        if backbone_weights is not None:
            self.net.pyramid.load_imagenet(backbone_weights, key="model.backbone_weights")
        self.loss = MultiScaleEPE(tuple(level_weights))
        self.apply_mask = apply_mask
        self.flipping_condition = flipping_condition

    def load_official(self, path) -> None:
        super().load_official(path)
        self.backbone_loaded = True

    def on_fit_start(self) -> None:
        if not self.backbone_loaded:
            warnings.warn(
                "GLU-Net trains on a RANDOM VGG-16 backbone (frozen): set model.backbone_weights to torchvision's "
                "ImageNet file vgg16-397923af.pth (https://download.pytorch.org/models/vgg16-397923af.pth)",
                stacklevel=1,
            )

    def estimate_flow(self, source: Tensor, target: Tensor) -> Tensor:
        """`flipping_condition`: GOCor / DenseMatching's mirrored-target test (models/glunet/flipping.py)."""
        if self.flipping_condition:
            return estimate_flow_with_flipping(
                lambda s, t: estimate_flow(self.net, s, t), lambda s, t: coarse_score(self.net, s, t), source, target
            )
        return estimate_flow(self.net, source, target)

    def compute_losses(self, batch: dict) -> dict[str, Tensor]:
        """L-Net levels against the GT resized to 256 x 256 (vectors rescaled), H-Net levels against the GT of the
        training images (DenseMatching's GLUNetBatchPreprocessing + MultiScaleFlow); images used at their size;
        `apply_mask` restricts the loss to `flow_valid` (off in the paper recipes: the loss covers every pixel)."""
        self.net.pyramid.eval()  # frozen backbone: its BatchNorm-free VGG has no statistics, but keep it in eval
        target, source = batch["image0"], batch["image1"]
        flow = batch["flow"].permute(0, 3, 1, 2)  # (B, H, W, 2) on image 0's grid -> (B, 2, H, W)
        valid = batch["flow_valid"].bool() if self.apply_mask else None
        h, w = flow.shape[-2:]
        src, tgt, src_256, tgt_256, _, _ = preprocess_pair(source, target)
        if tuple(tgt.shape[-2:]) != (h, w):
            raise ValueError(f"GLU-Net training images must be multiples of 8 (>= 256), got {h}x{w}")
        out = self.net(tgt, src, tgt_256, src_256, iterative_refinement=False)
        flow_256 = F.interpolate(flow, (LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
        flow_256 = flow_256 * torch.tensor([LOW_RES / w, LOW_RES / h], device=flow.device).view(1, 2, 1, 1)
        valid_256 = (
            None
            if valid is None
            else F.interpolate(valid[:, None].float(), (LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
            .floor()[:, 0]
            .bool()
        )
        return self.loss(
            [*out["flow_256"], *out["flow"]], [flow_256, flow_256, flow, flow], [valid_256, valid_256, valid, valid]
        )
