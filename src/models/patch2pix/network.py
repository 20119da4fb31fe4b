"""The Patch2Pix network: stride-8 ResNet-34, NCNet match proposals on the pooled 4-D correlation, and the mid/fine
pixel regressors (absent for the NCNet-only matcher)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from corrlab.models.patch2pix.backbone import ResNet34Stride8, normalize_imagenet
from corrlab.models.patch2pix.consensus import NeighbourhoodConsensus, filter_correlation, xavier_init_consensus_
from corrlab.models.patch2pix.regressor import PatchRegressor, xavier_init_regressor_
from corrlab.ops.correlation4d import correlation4d, pooled_correlation4d

FEATURE_EPS = 1e-6


def l2_normalize(features: Tensor) -> Tensor:
    """Unit channel vectors, written as the reference (eps inside, pow 0.5) so the values are bitwise the same."""
    return features / torch.pow(torch.sum(torch.pow(features, 2), dim=1) + FEATURE_EPS, 0.5).unsqueeze(1)


class Patch2PixNet(nn.Module):
    """backbone -> correlation of L2-normalised layer3 features -> 4-D max-pool (`pool`, keeping the window index)
    -> mutual matching -> neighbourhood consensus -> mutual matching; regressors on `patch_levels` (image, conv1,
    layer1, layer2 by default: 259 channels per image).  Initialised as the reference (Xavier, BN2d ~ N(1, 0.02))."""

    def __init__(
        self,
        regressors: bool = True,
        pool: int = 2,
        consensus_kernels: Sequence[int] = (3, 3),
        consensus_channels: Sequence[int] = (16, 1),
        patch_levels: Sequence[int] = (0, 1, 2, 3),
        psize: int = 16,
        conv_dims: Sequence[int] = (512, 512),
        conv_kernels: Sequence[int] = (3, 3),
        conv_strides: Sequence[int] = (2, 1),
        fc_dims: Sequence[int] = (512, 256),
    ) -> None:
        super().__init__()
        self.pool = pool
        self.psize = psize
        self.patch_levels = tuple(patch_levels)
        self.backbone = ResNet34Stride8()
        self.consensus = NeighbourhoodConsensus(consensus_kernels, consensus_channels)
        self.regress_mid: PatchRegressor | None = None
        self.regress_fine: PatchRegressor | None = None
        if regressors:
            in_channels = 2 * sum(ResNet34Stride8.channels[level] for level in self.patch_levels)
            config = dict(
                in_channels=in_channels,
                psize=psize,
                conv_dims=conv_dims,
                conv_kernels=conv_kernels,
                conv_strides=conv_strides,
                fc_dims=fc_dims,
            )
            self.regress_mid = PatchRegressor(**config)
            self.regress_fine = PatchRegressor(**config)
        self.reset_parameters()

    @property
    def stride(self) -> int:
        """Pixels per cell of the (unpooled) correlation grid."""
        return ResNet34Stride8.strides[-1]

    @property
    def patch_strides(self) -> tuple[int, ...]:
        return tuple(ResNet34Stride8.strides[level] for level in self.patch_levels)

    def reset_parameters(self) -> None:
        for module in self.backbone.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)
        xavier_init_consensus_(self.consensus)
        for regressor in (self.regress_mid, self.regress_fine):
            if regressor is not None:
                xavier_init_regressor_(regressor)

    def features(self, images: Tensor) -> list[Tensor]:
        """Feature levels of images in [0, 1] (ImageNet normalisation happens here)."""
        return self.backbone(normalize_imagenet(images))

    def patch_features(self, levels: Sequence[Tensor]) -> list[Tensor]:
        """The levels the regressors read their patches from."""
        return [levels[level] for level in self.patch_levels]

    def correlate(self, coarse0: Tensor, coarse1: Tensor, pool: int | None = None) -> tuple[Tensor, Tensor | None]:
        """Filtered correlation (B, 1, I, J, K, L) of layer3 features and the max-pool window index (None if pool 1)."""
        pool = self.pool if pool is None else pool
        feat0, feat1 = l2_normalize(coarse0), l2_normalize(coarse1)
        if pool > 1:
            corr, window = pooled_correlation4d(feat0, feat1, pool)
        else:
            corr, window = correlation4d(feat0, feat1), None
        return filter_correlation(corr, self.consensus), window
