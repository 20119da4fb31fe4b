"""GeoAware-SC post-processors: the supervised AggregationNetwork (ODISE-style bottleneck branches over the
SD s3/s4/s5 and DINOv2 maps, softmax-mixed) and the zero-shot identity with separate SD/DINO normalisation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FEATURE_DIMS = (640, 1280, 1280, 768)  # SD s3, s4, s5 (upsampled to 60x60), DINOv2 ViT-B/14 layer 11 tokens
SD_CHANNELS = sum(FEATURE_DIMS[:3])


class ConvNorm(nn.Conv2d):
    """Bias-free convolution followed by GroupNorm (keys `weight`, `norm.weight`, `norm.bias` as in Detectron2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, num_groups: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.norm = nn.GroupNorm(num_groups, out_channels)
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")  # c2_msra_fill

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(super().forward(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual bottleneck with GN; 1x1+GN projection shortcut when the widths differ."""

    def __init__(self, in_channels: int, bottleneck_channels: int, out_channels: int, num_groups: int) -> None:
        super().__init__()
        self.shortcut = ConvNorm(in_channels, out_channels, 1, num_groups) if in_channels != out_channels else None
        self.conv1 = ConvNorm(in_channels, bottleneck_channels, 1, num_groups)
        self.conv2 = ConvNorm(bottleneck_channels, bottleneck_channels, 3, num_groups)
        self.conv3 = ConvNorm(bottleneck_channels, out_channels, 1, num_groups)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class AggregationNetwork(nn.Module):
    """Sum over feature groups i of softmax(mixing_weights)_i * Bottleneck_i(x_i) -> projection_dim channels.

    Input: (B, sum(feature_dims), H, W), the groups concatenated in order; dropout on it while training.
    `logit_scale` (ln 1/0.07) is the CLIP temperature of the sparse loss; `self_logit_scale` (ln 10) is kept
    only because the released checkpoints hold it.
    """

    def __init__(
        self,
        feature_dims: Sequence[int] = FEATURE_DIMS,
        projection_dim: int = 768,
        num_norm_groups: int = 32,
        feat_map_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.feature_dims = list(feature_dims)
        self.feat_map_dropout = feat_map_dropout
        self.bottleneck_layers = nn.ModuleList(
            nn.Sequential(Bottleneck(c, projection_dim // 4, projection_dim, num_norm_groups)) for c in feature_dims
        )
        self.mixing_weights = nn.Parameter(torch.ones(len(self.feature_dims)))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.self_logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(self, features: Tensor) -> Tensor:
        if self.training and self.feat_map_dropout > 0:
            features = F.dropout(features, p=self.feat_map_dropout)
        weights = F.softmax(self.mixing_weights, dim=0)
        groups = features.split(self.feature_dims, dim=1)
        return sum(w * layer(x) for w, layer, x in zip(weights, self.bottleneck_layers, groups))

    def load_official(self, path: str | Path) -> None:
        """Load a released checkpoint (`best_856.PTH`, AP-10K `last.PTH`: a plain state_dict), strict keys."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "mixing_weights" not in state:
            raise ValueError(f"{path}: not a GeoAware-SC AggregationNetwork state_dict (no 'mixing_weights' key)")
        self.load_state_dict(state, strict=True)


class DummyAggregationNetwork(nn.Module):
    """Zero-shot post-processor: the concatenated features unchanged (the reference multiplies by a
    parameter fixed at 1); `normalize_descriptors(..., separate_sd=True)` then does the fusion."""

    feature_dims = list(FEATURE_DIMS)

    def forward(self, features: Tensor) -> Tensor:
        return features


def normalize_descriptors(desc: Tensor, separate_sd: bool, eps: float = 1e-10) -> Tensor:
    """L2-normalise descriptors (..., C); zero-shot first normalises the SD part (first 3200 channels) and the
    DINO part separately.  The reference's `x / (||x|| + eps)` with eps = 1e-10."""
    if separate_sd:
        sd, dino = desc[..., :SD_CHANNELS], desc[..., SD_CHANNELS:]
        desc = torch.cat(
            [sd / (sd.norm(dim=-1, keepdim=True) + eps), dino / (dino.norm(dim=-1, keepdim=True) + eps)], -1
        )
    return desc / (desc.norm(dim=-1, keepdim=True) + eps)
