"""Patch2Pix (Zhou, Sattler, Leal-Taixe, CVPR 2021): NCNet patch-level proposals refined to pixel level by two
regressors, trained with epipolar supervision only.  Reference: GrumpyZhou/patch2pix (docs/patch2pix.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from corrlab.geometry.epipolar import fundamental_from_pose
from corrlab.geometry.scaling import intrinsics_to_resized
from corrlab.losses.patch2pix import Patch2PixLoss
from corrlab.matches import Matches
from corrlab.models.patch2pix.coarse_matches import expand_to_anchors, sample_proposals
from corrlab.models.patch2pix.network import Patch2PixNet
from corrlab.models.patch2pix.official import load_official_patch2pix
from corrlab.models.patch2pix.pipeline import (
    coarse_proposals,
    freeze,
    load_ncnet_initialisation,
    network_frame,
    to_batch_pixels,
    warn_random_backbone,
)
from corrlab.models.patch2pix.refinement import reduced_precision_copy, regress_matches
from corrlab.modules.base import MatchingModule

# inference precision of the two regressors: float32 is the reference's (bitwise equal matches); bfloat16 runs
# their convolutions about 1.8x faster on CPUs with AVX512-BF16 / AMX, with offsets that differ (docs/patch2pix.md)
REGRESSOR_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class Patch2Pix(MatchingModule):
    """Matches: mutual NCNet proposals (ncn_thres) -> mid regressor -> fine regressor -> keep fine probability >
    io_thres (all of them if none passes), in batch pixels with the fine probability as score.

    Images are resized inside to a longer side of at most `max_side` with sides floored to 16, resampled as
    `resample` says (the datamodule's own resize policy decides the batch pixels matches are returned in; a batch
    already at the network size is not resized again).  `regressor_dtype` bfloat16 runs the regressors of `match`
    in bfloat16 (faster, not the reference's rounding).  Training (compute_losses) needs K0, K1 (batch
    frame) and T_0to1; only the two regressors are trained, the backbone and NCNet are frozen.
    """

    requires_weights = True

    def __init__(
        self,
        backbone: dict | None = None,
        ncnet_weights: str | None = None,
        max_side: int | None = 1024,
        resample: str = "pil_bicubic",
        pool: int = 2,
        ncn_thres: float = 0.0,
        io_thres: float = 0.25,
        val_io_thres: float = 0.5,
        proposals: int = 400,
        anchor_shift: int = 8,
        regr_batch: int = 1200,
        match_chunk: int = 256,
        checkpoint_regressors: bool = False,
        regressor_dtype: str = "float32",
        loss: nn.Module | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        if regressor_dtype not in REGRESSOR_DTYPES:
            raise ValueError(f"model.regressor_dtype: '{regressor_dtype}' is not one of {sorted(REGRESSOR_DTYPES)}")
        super().__init__(optimizer=optimizer, scheduler=scheduler)
        self.save_hyperparameters(ignore=["loss", "optimizer", "scheduler"], logger=False)
        self.net = Patch2PixNet(regressors=True, pool=pool)
        self.loss = loss if loss is not None else Patch2PixLoss()
        backbone_weights = (backbone or {}).get("weights")
        if backbone_weights:
            self.net.backbone.load_imagenet(backbone_weights)
            self.note_weights(backbone_weights, "torchvision ResNet-34 ImageNet state_dict", "model.backbone.weights")
        if ncnet_weights:
            load_ncnet_initialisation(self.net, ncnet_weights)
            self.note_weights(
                ncnet_weights, "NCNet backbone + consensus (ncn_ivd_5ep.pth or NCNet .ckpt)", "model.ncnet_weights"
            )
        self.pretrained_backbone = bool(backbone_weights or ncnet_weights)
        freeze(self.net.backbone)
        freeze(self.net.consensus)
        self.max_side, self.multiple, self.resample = max_side, self.net.stride * pool, resample
        self.ncn_thres, self.io_thres, self.val_io_thres = ncn_thres, io_thres, val_io_thres
        self.proposals, self.anchor_shift = proposals, anchor_shift
        self.regr_batch, self.match_chunk = regr_batch, match_chunk
        self.checkpoint_regressors = checkpoint_regressors
        self.regressor_dtype = REGRESSOR_DTYPES[regressor_dtype]

    def load_official(self, path: str | Path) -> None:
        load_official_patch2pix(self.net, path)
        self.note_weights(path, "official Patch2Pix checkpoint (patch2pix_pretrained.pth)")

    # --- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def match(self, batch: dict, io_thres: float | None = None) -> Matches:
        io_thres = self.io_thres if io_thres is None else io_thres
        images0, images1, scale0, scale1 = network_frame(batch, self.max_side, self.multiple, self.resample)
        levels0, levels1 = self.net.features(images0), self.net.features(images1)
        patch0, patch1 = self.net.patch_features(levels0), self.net.patch_features(levels1)
        regressors = self.inference_regressors()
        parts = []
        for b, (coarse, _) in enumerate(coarse_proposals(self.net, levels0, levels1, self.ncn_thres)):
            fine, probability = self.refine(patch0, patch1, b, coarse, self.match_chunk, regressors)
            keep = probability > io_thres
            if keep.any():
                fine, probability = fine[keep], probability[keep]
            kpts0, kpts1 = to_batch_pixels(fine, scale0, scale1)
            parts.append(Matches(kpts0, kpts1, probability, torch.full((len(fine),), b, device=fine.device)))
        return Matches.concat(parts)

    def inference_regressors(self) -> tuple[nn.Module, nn.Module]:
        """The mid and fine regressors in `regressor_dtype` (copies made per call when it is not float32, so they
        always follow the trained weights)."""
        regressors = (self.net.regress_mid, self.net.regress_fine)
        if self.regressor_dtype == torch.float32:
            return regressors
        return tuple(reduced_precision_copy(r, self.regressor_dtype) for r in regressors)

    def refine(
        self,
        patch0: list[Tensor],
        patch1: list[Tensor],
        b: int,
        coarse: Tensor,
        chunk: int,
        regressors: tuple[nn.Module, nn.Module],
    ) -> tuple[Tensor, Tensor]:
        """Fine matches and probabilities of pair b from coarse matches (network pixels)."""
        dtype = next(regressors[0].parameters()).dtype
        mid, _ = self.regress(regressors[0], patch0, patch1, b, coarse, chunk, dtype)
        return self.regress(regressors[1], patch0, patch1, b, mid, chunk, dtype)

    def regress(
        self,
        regressor: nn.Module,
        patch0: list[Tensor],
        patch1: list[Tensor],
        b: int,
        matches: Tensor,
        chunk: int,
        dtype: torch.dtype | None = None,
    ) -> tuple[Tensor, Tensor]:
        return regress_matches(
            regressor,
            patch0,
            patch1,
            self.net.patch_strides,
            b,
            matches,
            self.net.psize,
            chunk,
            use_checkpoint=self.checkpoint_regressors,
            dtype=dtype,
        )

    # --- training -----------------------------------------------------------------------------
    def compute_losses(self, batch: dict) -> dict[str, Tensor]:
        images0, images1, scale0, scale1 = network_frame(batch, self.max_side, self.multiple, self.resample)
        with torch.no_grad():
            levels0, levels1 = self.net.features(images0), self.net.features(images1)
            proposals = coarse_proposals(self.net, levels0, levels1, 0.0)
        patch0, patch1 = self.net.patch_features(levels0), self.net.patch_features(levels1)
        anchors = [
            expand_to_anchors(sample_proposals(coarse, self.proposals), self.anchor_shift) for coarse, _ in proposals
        ]
        mid = [self.regress(self.net.regress_mid, patch0, patch1, b, a, self.regr_batch) for b, a in enumerate(anchors)]
        fine = [
            self.regress(self.net.regress_fine, patch0, patch1, b, m, self.regr_batch) for b, (m, _) in enumerate(mid)
        ]
        fundamentals = [
            fundamental_from_pose(intrinsics_to_resized(K0, scale0), intrinsics_to_resized(K1, scale1), T)
            for K0, K1, T in zip(batch["K0"], batch["K1"], batch["T_0to1"])
        ]
        return self.loss(
            anchors, [m for m, _ in mid], [f for f, _ in fine], [p for _, p in mid], [p for _, p in fine], fundamentals
        )

    def training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        """The step is skipped (None, as the reference does) when no pair of the batch on any rank has a
        positive label; decided across ranks, so under DDP every rank skips or every rank steps (a rank that
        skipped alone would leave the others waiting in the gradient all-reduce).  A rank without a valid pair
        in a step that others take contributes a zero loss (zero gradients)."""
        losses = self.compute_losses(batch)
        batch_size = batch["image0"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=batch_size)
        none_here = bool(losses["valid_pairs"] == 0)
        if self.trainer.strategy.reduce_boolean_decision(none_here, all=True):
            return None
        if none_here:
            return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        self.log("loss", losses["total"].detach(), batch_size=batch_size, prog_bar=True, logger=False)
        return losses["total"]

    def validation_step(self, batch: dict, batch_idx: int) -> Matches:
        """The shared validation (the benchmark's predict, then update) at the reference's validation threshold."""
        default, self.io_thres = self.io_thres, self.val_io_thres
        try:
            return super().validation_step(batch, batch_idx)
        finally:
            self.io_thres = default

    def on_fit_start(self) -> None:
        synced = [name for name, m in self.named_modules() if isinstance(m, nn.SyncBatchNorm)]
        if synced:
            raise ValueError(
                "Patch2Pix trains with per-rank BatchNorm: set trainer.sync_batchnorm=false (trainer=ddp sets it).  "
                "Its regressors normalise each micro-batch of regr_batch matches with that micro-batch's statistics "
                "(the reference's recipe); SyncBatchNorm would pool each micro-batch with the other ranks' "
                f"(world_size x regr_batch matches).  Synchronised layers: {', '.join(synced[:3])}, ..."
            )
        if not self.pretrained_backbone:
            warn_random_backbone("Patch2Pix")
