"""NCNet's match filtering on a 4-D correlation: soft mutual matching and the symmetric neighbourhood consensus
network (a stack of Conv4d + ReLU applied to the volume and to its image0/image1 transpose)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from corrlab.ops.conv4d import Conv4d

MUTUAL_EPS = 1e-5


def mutual_matching(corr: Tensor) -> Tensor:
    """corr * (corr / max over image-0 cells) * (corr / max over image-1 cells) on (B, 1, I, J, K, L)."""
    b, _, i, j, k, l = corr.shape
    max_over_0 = corr.reshape(b, i * j, k, l).max(dim=1, keepdim=True).values.reshape(b, 1, 1, 1, k, l)
    max_over_1 = corr.reshape(b, i, j, k * l).max(dim=3, keepdim=True).values.reshape(b, 1, i, j, 1, 1)
    return corr * ((corr / (max_over_1 + MUTUAL_EPS)) * (corr / (max_over_0 + MUTUAL_EPS)))


def swap_images(corr: Tensor) -> Tensor:
    """(B, C, I, J, K, L) -> (B, C, K, L, I, J): the same volume seen from image 1."""
    return corr.permute(0, 1, 4, 5, 2, 3)


class NeighbourhoodConsensus(nn.Module):
    """Conv4d(1 -> c0) + ReLU, ..., Conv4d(-> 1) + ReLU; symmetric: net(x) + swap(net(swap(x)))."""

    def __init__(
        self, kernel_sizes: Sequence[int] = (3, 3), channels: Sequence[int] = (16, 1), symmetric: bool = True
    ) -> None:
        super().__init__()
        if len(kernel_sizes) != len(channels) or channels[-1] != 1:
            raise ValueError(
                f"consensus: one kernel size per layer and a last layer of 1 channel, got {kernel_sizes}, {channels}"
            )
        layers: list[nn.Module] = []
        previous = 1
        for kernel, width in zip(kernel_sizes, channels):
            layers += [Conv4d(previous, width, kernel), nn.ReLU(inplace=True)]
            previous = width
        self.conv = nn.Sequential(*layers)
        self.symmetric = symmetric

    def forward(self, corr: Tensor) -> Tensor:
        if not self.symmetric:
            return self.conv(corr)
        return self.conv(corr) + swap_images(self.conv(swap_images(corr).contiguous()))


def filter_correlation(corr: Tensor, consensus: NeighbourhoodConsensus) -> Tensor:
    """mutual matching -> neighbourhood consensus -> mutual matching (NCNet's processing of the volume)."""
    return mutual_matching(consensus(mutual_matching(corr)))


def xavier_init_consensus_(consensus: NeighbourhoodConsensus) -> None:
    """The reference initialisation: Xavier-uniform drawn on the weight in the reference's stored layout
    (S, Co, Ci, S, S, S), zero bias."""
    for layer in consensus.conv:
        if isinstance(layer, Conv4d):
            stored = torch.empty(reference_layout_shape(layer.weight.shape))
            nn.init.xavier_uniform_(stored)
            with torch.no_grad():
                layer.weight.copy_(from_reference_layout(stored))
                if layer.bias is not None:
                    layer.bias.zero_()


def reference_layout_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """(Co, Ci, S, S, S, S) -> the shape the reference Conv4d stores: (S, Co, Ci, S, S, S)."""
    return (shape[2], shape[0], shape[1], *shape[3:])


def from_reference_layout(weight: Tensor) -> Tensor:
    """A Conv4d weight stored as (S, Co, Ci, S, S, S) (NCNet / Patch2Pix files) -> (Co, Ci, S, S, S, S)."""
    return weight.permute(1, 2, 0, 3, 4, 5).contiguous()


def to_reference_layout(weight: Tensor) -> Tensor:
    """(Co, Ci, S, S, S, S) -> the reference's stored layout (S, Co, Ci, S, S, S)."""
    return weight.permute(2, 0, 1, 3, 4, 5).contiguous()
