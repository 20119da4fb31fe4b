"""Patch2Pix's match regressor (the reference FeatRegressNet with 'pre' feature combination): two convs on the
stacked local patches, a max-pool to 1x1, three fully-connected layers -> 4 offsets + 1 inlier logit."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class PatchRegressor(nn.Module):
    """(N, in_channels, psize, psize) -> (N, 5).

    conv: [Conv2d(k, stride, pad 1, no bias) + BatchNorm2d] per layer, one ReLU after the last BN, MaxPool to 1x1;
    fc: [Linear + BatchNorm1d + ReLU] per hidden width, then Linear(-> 5).  Defaults are the released model's.
    """

    def __init__(
        self,
        in_channels: int = 518,
        psize: int = 16,
        conv_dims: Sequence[int] = (512, 512),
        conv_kernels: Sequence[int] = (3, 3),
        conv_strides: Sequence[int] = (2, 1),
        fc_dims: Sequence[int] = (512, 256),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size, previous = psize, in_channels
        for width, kernel, stride in zip(conv_dims, conv_kernels, conv_strides):
            layers += [nn.Conv2d(previous, width, kernel, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width)]
            size = (size - kernel + 2) // stride + 1
            previous = width
        layers += [nn.ReLU(), nn.MaxPool2d(kernel_size=size)]
        self.conv = nn.Sequential(*layers)
        fc: list[nn.Module] = []
        for width in fc_dims:
            fc += [nn.Linear(previous, width), nn.BatchNorm1d(width), nn.ReLU()]
            previous = width
        fc.append(nn.Linear(previous, 5))
        self.fc = nn.Sequential(*fc)

    def forward(self, patches: Tensor) -> Tensor:
        return self.fc(self.conv(patches).flatten(1))


def apply_regression(
    output: Tensor, matches: Tensor, psize: int, size0: tuple[int, int], size1: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Refined matches and inlier probabilities from regressor output (N, 5).

    offset = psize * tanh(relu(out[:, :4])) - psize // 2, in [-psize/2, psize/2); refined = matches + offset, clamped
    to [0, W] x [0, H] of each image (sizes as (H, W)); probability = sigmoid(out[:, 4]).
    """
    offset = psize * torch.tanh(torch.relu(output[:, :4])) - psize // 2
    refined = matches + offset
    (h0, w0), (h1, w1) = size0, size1
    refined = torch.stack(
        [
            refined[:, 0].clamp(0, w0),
            refined[:, 1].clamp(0, h0),
            refined[:, 2].clamp(0, w1),
            refined[:, 3].clamp(0, h1),
        ],
        dim=1,
    )
    return refined, torch.sigmoid(output[:, 4])


def xavier_init_regressor_(regressor: PatchRegressor) -> None:
    """The reference initialisation: Xavier-uniform conv/linear weights, zero biases, BatchNorm2d weight ~ N(1, 0.02)
    (BatchNorm1d keeps PyTorch's default)."""
    for module in regressor.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
