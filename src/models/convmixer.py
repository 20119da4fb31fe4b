"""PUMP's dense descriptor: a ConvMixer giving one L2-normalised 128-D descriptor per pixel.

Layer layout (and so the state_dict keys "0.weight" ... "34.bias") is the one of the released
PUMP.pt / PUMP-stytrf.pt checkpoints: conv5x5 -> patch conv (stride 4) -> `depth` x [residual
depthwise conv + pointwise conv] -> pointwise conv -> PixelShuffle(2) -> bilinear x2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Residual(nn.Module):
    """x + fn(x); the wrapped block is stored as `fn` (checkpoint key `<i>.fn.*`)."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fn(x)


def conv_relu_bn(in_dim: int, out_dim: int, **conv) -> list[nn.Module]:
    return [nn.Conv2d(in_dim, out_dim, **conv), nn.ReLU(), nn.BatchNorm2d(out_dim)]


class ConvMixer(nn.Sequential):
    """Images (B, 3, H, W) in [0, 1] -> descriptors (B, output_dim, 4*floor(H/4), 4*floor(W/4)).

    ImageNet normalisation happens inside (non-persistent buffers, so the state_dict is exactly the
    official one).  Defaults are the paper's: 128-D output, 512 hidden channels, depth 7, patch 4,
    depthwise kernel 9, a 5x5 full-resolution conv with hidden/4 channels first.
    """

    def __init__(
        self, output_dim: int = 128, hidden_dim: int = 512, depth: int = 7, patch_size: int = 4, kernel_size: int = 9
    ) -> None:
        if kernel_size % 2 != 1 or patch_size % 2 != 0:
            raise ValueError(f"kernel_size must be odd and patch_size even, got {kernel_size} and {patch_size}")
        layers = conv_relu_bn(3, hidden_dim // 4, kernel_size=5, padding=2)
        layers += conv_relu_bn(hidden_dim // 4, hidden_dim, kernel_size=patch_size, stride=patch_size)
        for _ in range(depth):
            depthwise = nn.Sequential(
                *conv_relu_bn(
                    hidden_dim, hidden_dim, kernel_size=kernel_size, padding=kernel_size // 2, groups=hidden_dim
                )
            )
            layers += [Residual(depthwise), *conv_relu_bn(hidden_dim, hidden_dim, kernel_size=1)]
        shuffle = patch_size // 2
        layers += [
            nn.Conv2d(hidden_dim, output_dim * shuffle**2, kernel_size=1),
            nn.PixelShuffle(shuffle),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        ]
        super().__init__(*layers)
        self.output_dim = output_dim
        self.patch_size = patch_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"ConvMixer expects (B, 3, H, W) images, got {tuple(images.shape)}")
        x = (images - self.mean) / self.std
        if torch.is_grad_enabled():
            # channels-last makes the CPU backward of the depthwise convolutions ~4x faster; inference
            # keeps the default layout, which reproduces the reference's descriptors bit for bit
            x = x.contiguous(memory_format=torch.channels_last)
        for layer in self:
            x = layer(x)
        return F.normalize(x, dim=1).contiguous()
