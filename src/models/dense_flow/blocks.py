"""Layers of the PWC-Net / DGC-Net family as DenseMatching defines them (names kept so official weights map 1:1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

DENSE_WIDTHS = (128, 128, 96, 64, 32)


def conv(
    cin: int,
    cout: int,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int = 1,
    dilation: int = 1,
    batch_norm: bool = False,
) -> nn.Sequential:
    """Conv + (BatchNorm) + LeakyReLU(0.1)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel_size, stride, padding, dilation, bias=True)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.1))
    return nn.Sequential(*layers)


def predict_flow(cin: int) -> nn.Conv2d:
    return nn.Conv2d(cin, 2, kernel_size=3, stride=1, padding=1, bias=True)


def deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    """4 x 4 stride-2 transposed convolution (x2 upsampling)."""
    return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=True)


def bilinear_deconv() -> nn.ConvTranspose2d:
    """x2 flow upsampling initialised to bilinear interpolation, channel by channel (GLU-Net)."""
    layer = deconv(2, 2)
    factor, centre = 2, 1.5
    taps = 1 - torch.abs(torch.arange(4.0) - centre) / factor
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        for c in range(2):
            layer.weight[c, c] = taps[:, None] * taps[None, :]
    return layer


class DenseFlowDecoder(nn.Module):
    """PWC-Net's densely connected flow estimator: five convs whose outputs are concatenated, then a flow head.
    Returns (features, flow)."""

    def __init__(self, in_channels: int, batch_norm: bool):
        super().__init__()
        widths = [in_channels]
        for i, width in enumerate(DENSE_WIDTHS):
            setattr(self, f"conv_{i}", conv(sum(widths), width, batch_norm=batch_norm))
            widths.append(width)
        self.out_channels = sum(widths)
        self.predict_flow = predict_flow(self.out_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        for i in range(len(DENSE_WIDTHS)):
            x = torch.cat((getattr(self, f"conv_{i}")(x), x), 1)
        return x, self.predict_flow(x)


class MappingDecoder(nn.Module):
    """DGC-Net's global mapping decoder (CMDTop): five conv + BN + ReLU blocks and a 2-channel head giving the
    mapping in [-1, 1] coordinates."""

    def __init__(self, in_channels: int, batch_norm: bool = True):
        super().__init__()
        widths = (in_channels, *DENSE_WIDTHS)
        for i in range(5):
            layers = [nn.Conv2d(widths[i], widths[i + 1], 3, 1, 1)]
            layers += [nn.BatchNorm2d(widths[i + 1])] if batch_norm else []
            setattr(self, f"conv{i}", nn.Sequential(*layers, nn.ReLU(inplace=True)))
        self.final = nn.Conv2d(DENSE_WIDTHS[-1], 2, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        for i in range(5):
            x = getattr(self, f"conv{i}")(x)
        return self.final(x)


class ContextNetwork(nn.Module):
    """PWC-Net's dilated-convolution refinement (dilations 1, 2, 4, 8, 16, 1), predicting a residual flow.
    `prefix` keeps the reference attribute names (dc_conv*, l_dc_conv*)."""

    def __init__(self, in_channels: int, batch_norm: bool, prefix: str = "dc_conv"):
        super().__init__()
        self.prefix = prefix
        specs = [(in_channels, 128, 1), (128, 128, 2), (128, 128, 4), (128, 96, 8), (96, 64, 16), (64, 32, 1)]
        for i, (cin, cout, d) in enumerate(specs, start=1):
            setattr(self, f"{prefix}{i}", conv(cin, cout, padding=d, dilation=d, batch_norm=batch_norm))
        setattr(self, f"{prefix}7", predict_flow(32))

    def forward(self, x: Tensor) -> Tensor:
        for i in range(1, 8):
            x = getattr(self, f"{self.prefix}{i}")(x)
        return x
