"""PWC-Net: a 6-level learned pyramid, a 9 x 9 (md = 4) local correlation of the target features with the source
features warped by the upsampled flow, densely connected decoders, a context network at level 2; flows are
predicted divided by div = 20.  `gocor=True` replaces each level's correlation by its own local GOCor module.
Flows are on the target ("reference") grid, pointing into the source ("query")."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from corrlab.models.dense_flow.blocks import ContextNetwork, DenseFlowDecoder, conv, deconv
from corrlab.models.dense_flow.warping import warp
from corrlab.models.gocor.local_gocor import LocalGOCor, LocalGOCorConfig
from corrlab.ops.local_correlation import local_correlation

PYRAMID_WIDTHS = (16, 32, 64, 96, 128, 196)
LEVELS = (6, 5, 4, 3, 2)


@dataclass(frozen=True)
class PWCNetConfig:
    gocor: bool = False
    local_optim_iter: int = 3
    div: float = 20.0


class PWCNet(nn.Module):
    def __init__(self, cfg: PWCNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or PWCNetConfig()
        cin = 3
        for level, width in enumerate(PYRAMID_WIDTHS, start=1):
            names = ("a", "aa", "b") if level < 6 else ("aa", "a", "b")  # the reference's level-6 naming
            setattr(self, f"conv{level}{names[0]}", conv(cin, width, stride=2))
            setattr(self, f"conv{level}{names[1]}", conv(width, width))
            setattr(self, f"conv{level}{names[2]}", conv(width, width))
            cin = width
        for level in LEVELS:
            cin = 81 if level == 6 else 81 + PYRAMID_WIDTHS[level - 1] + 4
            decoder = DenseFlowDecoder(cin, batch_norm=False)
            setattr(self, f"decoder{level}", decoder)
            if level > 2:
                setattr(self, f"deconv{level}", deconv(2, 2))
                setattr(self, f"upfeat{level}", deconv(decoder.out_channels, 2))
        self.deconv2 = deconv(2, 2)  # unused by the forward pass, present in the reference's checkpoints
        self.context = ContextNetwork(self.decoder2.out_channels, batch_norm=False, prefix="dc_conv")
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                nn.init.zeros_(m.bias)
        if cfg.gocor:
            for level in LEVELS:
                setattr(self, f"local_corr_{level}", LocalGOCor(LocalGOCorConfig(optim_iter=cfg.local_optim_iter)))

    def pyramid(self, x: Tensor) -> list[Tensor]:
        out = []
        for level in range(1, 7):
            names = ("a", "aa", "b") if level < 6 else ("aa", "a", "b")
            for name in names:
                x = getattr(self, f"conv{level}{name}")(x)
            out.append(x)
        return out

    def cost(self, level: int, target: Tensor, source: Tensor) -> Tensor:
        corr = (
            getattr(self, f"local_corr_{level}")(target, source)
            if self.cfg.gocor
            else local_correlation(target, source)
        )
        return F.leaky_relu(corr, 0.1)

    def forward(self, target: Tensor, source: Tensor) -> list[Tensor]:
        """Images (B, 3, H, W), H and W multiples of 64, BGR in [0, 1] -> flows / div at levels 6..2."""
        feats_t, feats_s = self.pyramid(target), self.pyramid(source)
        flows, up_flow, up_feat = [], None, None
        for level in LEVELS:
            t, s = feats_t[level - 1], feats_s[level - 1]
            if level == 6:
                x = self.cost(level, t, s)
            else:
                # the reference's operation order (level 2 multiplies by div first)
                scaled = up_flow * self.cfg.div / 4.0 if level == 2 else up_flow * (1.0 / 2**level) * self.cfg.div
                warped = warp(s, scaled, with_mask=True)
                x = torch.cat((self.cost(level, t, warped), t, up_flow, up_feat), 1)
            x, flow = getattr(self, f"decoder{level}")(x)
            if level > 2:
                up_flow, up_feat = getattr(self, f"deconv{level}")(flow), getattr(self, f"upfeat{level}")(x)
            else:
                flow = flow + self.context(x)
            flows.append(flow)
        return flows


def estimate_flow(net: PWCNet, source: Tensor, target: Tensor) -> Tensor:
    """Flow (B, 2, H, W) on the target grid into the source; images RGB in [0, 1], resized to multiples of 64."""
    h, w = target.shape[-2:]
    size = (int(math.ceil(h / 64.0) * 64), int(math.ceil(w / 64.0) * 64))
    src, tgt = (
        F.interpolate(x, size=size, mode="bilinear", align_corners=False)[:, [2, 1, 0]] for x in (source, target)
    )
    flow = net.cfg.div * net(tgt, src)[-1]
    flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    return flow * torch.tensor([w / size[1], h / size[0]], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
