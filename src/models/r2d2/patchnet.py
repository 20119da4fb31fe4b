"""The R2D2 networks (Revaud et al., NeurIPS 2019): dilated L2-Net-like trunks giving, per pixel, an
L2-normalised descriptor, a reliability and a repeatability map (naver/r2d2 `nets/patchnet.py` layouts).

The layer lists below give the same `ops.<i>` indices as the released checkpoints, so their state dicts
load strictly.  Strides are replaced by dilations (the output has the input's resolution); the fast
variant max-pools once after its third convolution and upsamples the descriptor map back at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of the trunk: output channels, kernel, dilation and what follows it."""

    out: int
    kernel: int = 3
    dilation: int = 1
    bn: bool = True
    relu: bool = True
    maxpool: int = 1  # kernel of a max-pool after the block (1 = none)


def quad_l2net_specs(dim: int, mchan: int) -> list[ConvSpec]:
    """Quad_L2Net: L2-Net whose strides 2, 2 became dilations and whose final 8x8 conv became three 2x2."""
    return [
        ConvSpec(8 * mchan),
        ConvSpec(8 * mchan),
        ConvSpec(16 * mchan),
        ConvSpec(16 * mchan, dilation=2),
        ConvSpec(32 * mchan, dilation=2),
        ConvSpec(32 * mchan, dilation=4),
        ConvSpec(32 * mchan, kernel=2, dilation=4, relu=False),
        ConvSpec(32 * mchan, kernel=2, dilation=8, relu=False),
        ConvSpec(dim, kernel=2, dilation=16, bn=False, relu=False),
    ]


def fast_quad_l2net_specs(dim: int, mchan: int, downsample_factor: int) -> list[ConvSpec]:
    """Fast_Quad_L2Net: a max-pool after the third conv replaces the first stride (all later dilations halve)."""
    return [
        ConvSpec(8 * mchan),
        ConvSpec(8 * mchan),
        ConvSpec(16 * mchan, maxpool=downsample_factor),
        ConvSpec(16 * mchan),
        ConvSpec(32 * mchan),
        ConvSpec(32 * mchan, dilation=2),
        ConvSpec(32 * mchan, kernel=2, dilation=2, relu=False),
        ConvSpec(32 * mchan, kernel=2, dilation=4, relu=False),
        ConvSpec(dim, kernel=2, dilation=8, bn=False, relu=False),
    ]


def build_ops(specs: list[ConvSpec], in_channels: int = 3) -> nn.ModuleList:
    """conv [BN (affine=False)] [ReLU] [MaxPool] per spec, flattened in one list as in the checkpoints."""
    ops: list[nn.Module] = []
    channels = in_channels
    for spec in specs:
        padding = (spec.kernel - 1) * spec.dilation // 2
        ops.append(nn.Conv2d(channels, spec.out, spec.kernel, padding=padding, dilation=spec.dilation))
        if spec.bn:
            ops.append(nn.BatchNorm2d(spec.out, affine=False))
        if spec.relu:
            ops.append(nn.ReLU(inplace=True))
        if spec.maxpool > 1:
            ops.append(nn.MaxPool2d(spec.maxpool))
        channels = spec.out
    return nn.ModuleList(ops)


def normalize_channels_(x: Tensor) -> Tensor:
    """`F.normalize(x, p=2, dim=1)` in place (the same arithmetic), for maps too large to copy."""
    return x.div_(x.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12))


@dataclass
class R2D2Output:
    """Per-pixel outputs of one forward pass, all B x C x H' x W' (H' = H except the fast net on odd sizes)."""

    descriptors: Tensor  # B x dim, L2-normalised over channels
    reliability: Tensor  # B x 1, softmax of the 2-class `clf` head
    repeatability: Tensor  # B x 1, softplus(s) / (1 + softplus(s)) of the `sal` head


class R2D2Net(nn.Module):
    """Trunk `ops` + `clf` (reliability, 2 classes) and `sal` (repeatability) 1x1 heads on the squared
    raw descriptor.  `upsample` > 1 upsamples the raw descriptor bilinearly (the fast variant)."""

    def __init__(self, specs: list[ConvSpec], dim: int = 128, upsample: int = 1) -> None:
        super().__init__()
        self.ops = build_ops(specs)
        self.upsample = upsample
        self.dim = dim
        self.clf = nn.Conv2d(dim, 2, kernel_size=1)
        self.sal = nn.Conv2d(dim, 1, kernel_size=1)

    def features(self, image: Tensor) -> Tensor:
        """Raw (un-normalised) B x dim descriptor map of an ImageNet-normalised B x 3 x H x W image."""
        x = image
        for op in self.ops:
            x = op(x)
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="bilinear", align_corners=False)
        return x

    def heads(self, raw: Tensor) -> R2D2Output:
        """Normalised descriptors and the two confidence maps from the raw descriptor map.  The confidences come
        first, so that x² (and the copy oneDNN's 1x1 convolutions make of it) is freed before the normalised map
        exists: one full-resolution map less at the peak (~370 MB of extract.py's 1008 x 756 level 0)."""
        reliability, repeatability = self.confidences(raw**2)
        return R2D2Output(F.normalize(raw, p=2, dim=1), reliability, repeatability)

    def confidences(self, squared: Tensor) -> tuple[Tensor, Tensor]:
        """Reliability and repeatability from the squared raw descriptor map."""
        reliability = F.softmax(self.clf(squared), dim=1)[:, 1:2]
        softplus = F.softplus(self.sal(squared))
        return reliability, softplus / (1 + softplus)

    def forward(self, image: Tensor) -> R2D2Output:
        return self.heads(self.features(image))


def quad_l2net_confcfs(dim: int = 128, mchan: int = 4) -> R2D2Net:
    """`Quad_L2Net_ConfCFS(dim, mchan)`: r2d2_W*_N16.pt (mchan 4, 0.5M weights), r2d2_WASF_N8_big.pt (mchan 6)."""
    return R2D2Net(quad_l2net_specs(dim, mchan), dim)


def fast_quad_l2net_confcfs(dim: int = 128, mchan: int = 4, downsample_factor: int = 2) -> R2D2Net:
    """`Fast_Quad_L2Net_ConfCFS(dim, mchan, downsample_factor)`: faster2d2_WASF_N16.pt / _N8_big.pt."""
    return R2D2Net(fast_quad_l2net_specs(dim, mchan, downsample_factor), dim, upsample=downsample_factor)


ARCHITECTURES = {
    "Quad_L2Net_ConfCFS": quad_l2net_confcfs,
    "Fast_Quad_L2Net_ConfCFS": fast_quad_l2net_confcfs,
}


def count_parameters(net: nn.Module) -> int:
    """Learnable parameters (the reference's `model_size`)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
