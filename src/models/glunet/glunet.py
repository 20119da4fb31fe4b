"""GLU-Net: a 256 x 256 "L-Net" (global correlation at 16 x 16 + mapping decoder, local correlation at 32 x 32) and
an original-resolution "H-Net" (local correlations at 1/8 and 1/4), on a frozen VGG-16 pyramid.

`gocor=False` is GLU-Net (feature correlation, mutual matching, ReLU + L2 norm; plain local correlations);
`gocor=True` is GLU-Net-GOCor (global GOCor + LeakyReLU; one local GOCor shared by the three local levels).
Flows are on the target grid, pointing into the source, in pixels of each level's input resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from corrlab.models.dense_flow.blocks import ContextNetwork, DenseFlowDecoder, MappingDecoder, bilinear_deconv, deconv
from corrlab.models.dense_flow.warping import normalised_mapping_to_flow, warp
from corrlab.models.glunet.vgg_pyramid import VGGPyramid
from corrlab.models.gocor.global_gocor import GlobalGOCor, GlobalGOCorConfig
from corrlab.models.gocor.local_gocor import LocalGOCor, LocalGOCorConfig
from corrlab.ops.local_correlation import local_correlation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LOW_RES = 256


@dataclass(frozen=True)
class GLUNetConfig:
    gocor: bool = False
    global_optim_iter: int = 3
    local_optim_iter: int = 3
    iterative_refinement: bool = True  # GOCor's inference setting; DenseMatching trains without it


def feature_l2norm(x: Tensor) -> Tensor:
    return x / torch.sqrt((x * x).sum(1, keepdim=True) + 1e-6)


def mutual_matching(corr: Tensor, source_hw: tuple[int, int]) -> Tensor:
    """NCNet's soft mutual nearest neighbour filter on (B, Hs*Ws, Ht, Wt)."""
    b, _, ht, wt = corr.shape
    by_target = corr / (corr.max(dim=1, keepdim=True).values + 1e-5)
    flat = corr.reshape(b, *source_hw, ht * wt)
    by_source = (flat / (flat.max(dim=3, keepdim=True).values + 1e-5)).reshape(corr.shape)
    return corr * (by_source * by_target)


class GLUNet(nn.Module):
    def __init__(self, cfg: GLUNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or GLUNetConfig()
        corr_channels = 81
        self.decoder4 = MappingDecoder(16 * 16 + 2, batch_norm=True)
        self.deconv4 = bilinear_deconv()
        self.decoder3 = DenseFlowDecoder(corr_channels + 2, batch_norm=True)
        self.refine3 = ContextNetwork(self.decoder3.out_channels, batch_norm=True, prefix="dc_conv")
        self.decoder2 = DenseFlowDecoder(corr_channels + 2, batch_norm=True)
        self.upfeat2 = deconv(self.decoder2.out_channels, 2)
        self.deconv2 = bilinear_deconv()
        self.decoder1 = DenseFlowDecoder(corr_channels + 2 + 2, batch_norm=True)
        self.refine1 = ContextNetwork(self.decoder1.out_channels, batch_norm=True, prefix="l_dc_conv")
        for m in self.modules():  # DenseMatching's initialisation (the bilinear deconvs keep theirs)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.kaiming_normal_(self.upfeat2.weight, mode="fan_in")
        nn.init.zeros_(self.upfeat2.bias)
        if cfg.gocor:
            self.global_corr = GlobalGOCor(GlobalGOCorConfig(optim_iter=cfg.global_optim_iter))
            self.local_corr = LocalGOCor(LocalGOCorConfig(optim_iter=cfg.local_optim_iter))
        self.pyramid = VGGPyramid()

    # --- correlations -------------------------------------------------------------------------------
    def global_correlation(self, target: Tensor, source: Tensor) -> Tensor:
        """(B, Hs*Ws, Ht, Wt) cost volume of the 16 x 16 features."""
        if self.cfg.gocor:
            return F.leaky_relu(self.global_corr(feature_l2norm(target), feature_l2norm(source)), 0.1)
        t, s = feature_l2norm(target), feature_l2norm(source)
        b, c, ht, wt = t.shape
        corr = torch.bmm(t.flatten(2).transpose(1, 2), s.flatten(2))  # (B, HtWt, HsWs)
        corr = corr.transpose(1, 2).reshape(b, -1, ht, wt)
        corr = mutual_matching(corr, tuple(s.shape[-2:]))
        return feature_l2norm(F.relu(corr))

    def local_cost(self, target: Tensor, warped_source: Tensor) -> Tensor:
        corr = self.local_corr(target, warped_source) if self.cfg.gocor else local_correlation(target, warped_source)
        return F.leaky_relu(corr, 0.1)

    # --- network ------------------------------------------------------------------------------------
    def features(self, image: Tensor, image_256: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """(1/4, 1/8) features of the original-resolution image, (1/8, 1/16) of the 256 x 256 one."""
        high = self.pyramid(image, levels=4)
        low = self.pyramid(image_256, levels=5)
        return [high[2], high[3]], [low[3], low[4]]

    def coarse_flow(self, target16: Tensor, source16: Tensor) -> tuple[Tensor, Tensor]:
        """Level 4: (global cost volume, flow at 16 x 16 in pixels of the 256 x 256 images)."""
        corr4 = self.global_correlation(target16, source16)
        b, _, h, w = corr4.shape
        mapping = self.decoder4(torch.cat((corr4, corr4.new_zeros(b, 2, h, w)), 1))
        return corr4, normalised_mapping_to_flow(mapping) * (LOW_RES / 16.0)

    def forward(
        self,
        target: Tensor,
        source: Tensor,
        target_256: Tensor,
        source_256: Tensor,
        iterative_refinement: bool | None = None,
    ) -> dict[str, list]:
        """ImageNet-normalised images -> {'flow_256': [flow4, flow3], 'flow': [flow2, flow1], 'corr4': ...}.
        `iterative_refinement` None: the config's (DenseMatching trains without it, GOCor's inference uses it)."""
        (c11, c12), (c13, c14) = self.features(target, target_256)
        (c21, c22), (c23, c24) = self.features(source, source_256)
        h, w = target.shape[-2:]

        corr4, flow4 = self.coarse_flow(c14, c24)
        up_flow4 = self.deconv4(flow4)
        corr3 = self.local_cost(c13, warp(c23, up_flow4 * (32.0 / LOW_RES)))
        x3, res3 = self.decoder3(torch.cat((corr3, up_flow4), 1))
        flow3 = res3 + self.refine3(x3) + up_flow4

        to_original = torch.tensor([w / LOW_RES, h / LOW_RES], dtype=flow3.dtype, device=flow3.device).view(1, 2, 1, 1)
        if self.cfg.iterative_refinement if iterative_refinement is None else iterative_refinement:
            flow3 = flow3 * to_original
            flow3_out = flow3
            # from 32 x 32, upsample in steps of at most ~x3 to 1/8 of the original resolution (GLU-Net's R uses the
            # width for both axes)
            ratio = w / 8.0 / 32.0
            for n in range(extra_refinement_levels(ratio)):
                scale = 1.0 / (8.0 * 2 ** (extra_refinement_levels(ratio) - n))
                size = (int(h * scale), int(w * scale))
                up = F.interpolate(flow3, size=size, mode="bilinear", align_corners=False)
                c23_bis = F.interpolate(c22, size=size, mode="area")
                c13_bis = F.interpolate(c12, size=size, mode="area")
                corr = self.local_cost(c13_bis, warp(c23_bis, up * scale))
                _, res = self.decoder2(torch.cat((corr, up), 1))
                flow3 = res + up
            up_flow3 = F.interpolate(flow3, size=(h // 8, w // 8), mode="bilinear", align_corners=False)
        else:
            flow3_out = flow3
            up_flow3 = F.interpolate(flow3, size=(h // 8, w // 8), mode="bilinear", align_corners=False) * to_original

        corr2 = self.local_cost(c12, warp(c22, up_flow3 / 8.0))
        x2, res2 = self.decoder2(torch.cat((corr2, up_flow3), 1))
        flow2 = res2 + up_flow3
        up_flow2, up_feat2 = self.deconv2(flow2), self.upfeat2(x2)

        corr1 = self.local_cost(c11, warp(c21, up_flow2 / 4.0))
        x1, res1 = self.decoder1(torch.cat((corr1, up_flow2, up_feat2), 1))
        flow1 = res1 + self.refine1(x1) + up_flow2
        return {"flow_256": [flow4, flow3_out], "flow": [flow2, flow1], "corr4": corr4}


def extra_refinement_levels(ratio: float) -> int:
    """Extra 1/(8 * 2^k) refinement levels of GLU-Net's iterative refinement."""
    return max(0, int(round(math.log(ratio / 3.0) / math.log(2))))


def preprocess_pair(source: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, float, float]:
    """Images in [0, 1] -> (source, target) area-resized to multiples of 8 (at least 256) and their 256 x 256
    versions, ImageNet-normalised, and the ratios original / resized (x, y)."""
    h, w = target.shape[-2:]
    size = (256 if h < 256 else (h // 8) * 8, 256 if w < 256 else (w // 8) * 8)
    mean = torch.tensor(IMAGENET_MEAN, dtype=source.dtype, device=source.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=source.dtype, device=source.device).view(1, 3, 1, 1)

    def prepare(image: Tensor, out: tuple[int, int]) -> Tensor:
        return (F.interpolate(image, size=out, mode="area") - mean) / std

    resized = [prepare(x, size) for x in (source, target)]
    low = [prepare(x, (LOW_RES, LOW_RES)) for x in (source, target)]
    return resized[0], resized[1], low[0], low[1], w / size[1], h / size[0]


def estimate_flow(net: GLUNet, source: Tensor, target: Tensor) -> Tensor:
    """Flow (B, 2, H, W) on the target's original grid pointing into the source, images in [0, 1]."""
    src, tgt, src_256, tgt_256, ratio_x, ratio_y = preprocess_pair(source, target)
    flow = net(tgt, src, tgt_256, src_256)["flow"][-1]
    flow = F.interpolate(flow, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return flow * torch.tensor([ratio_x, ratio_y], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
