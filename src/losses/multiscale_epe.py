"""GLU-Net's multi-scale EPE (DenseMatching MultiScaleFlow + EPE, reduction 'weighted_sum_normalized').

Per level: the GT flow is bilinearly resized to the level's grid *without rescaling its vectors* (each level predicts
in units of its input resolution), the mask resized bilinearly and floored; the per-pixel end-point errors are summed
(not averaged) over the valid pixels, scaled by HW / #valid per image, and divided by the batch size.  Pixels whose
error is NaN or infinite never count (the reference drops them only when a mask is given).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GLUNET_LEVEL_WEIGHTS = (0.32, 0.08, 0.02, 0.01)  # flow4, flow3 (256 x 256 branch), flow2, flow1


def epe_weighted_sum_normalized(est: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """est, gt (B, 2, H, W); mask (B, H, W) bool or None."""
    b, _, h, w = gt.shape
    epe = torch.linalg.vector_norm(gt - est, dim=1)  # (B, H, W)
    valid = torch.isfinite(epe.detach())
    if mask is None:
        return torch.where(valid, epe, torch.zeros_like(epe)).sum() / b
    valid = valid & mask
    per_image = torch.where(valid, epe, torch.zeros_like(epe)).flatten(1).sum(1)
    return (per_image * (h * w) / (valid.flatten(1).sum(1).float() + 1e-6)).sum() / b


def resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask[:, None].float(), size, mode="bilinear", align_corners=False).floor()[:, 0].bool()


class MultiScaleEPE(nn.Module):
    def __init__(self, level_weights: tuple[float, ...] = GLUNET_LEVEL_WEIGHTS):
        super().__init__()
        self.level_weights = tuple(level_weights)

    def forward(self, flows: list[Tensor], gts: list[Tensor], masks: list[Tensor | None]) -> dict[str, Tensor]:
        """flows coarse to fine, each with the GT (and mask) of its branch resolution -> {'total', 'level<i>'}."""
        if len(flows) != len(self.level_weights):
            raise ValueError(f"{len(flows)} flow levels but {len(self.level_weights)} level weights")
        losses = {}
        for i, (flow, gt, mask, weight) in enumerate(zip(flows, gts, masks, self.level_weights)):
            size = tuple(flow.shape[-2:])
            gt_level = F.interpolate(gt, size, mode="bilinear", align_corners=False)
            mask_level = None if mask is None else resize_mask(mask, size)
            losses[f"level{i}"] = weight * epe_weighted_sum_normalized(flow, gt_level, mask_level)
        losses["total"] = sum(losses.values())
        return losses
