"""A slow, literal re-implementation of the reference Patch2Pix inference (GrumpyZhou/patch2pix `predict_fine` /
`predict_coarse` with ksize 2, mutual filtering and the io-threshold fallback), written for tests from the
algorithm's description.  Module names follow the reference, so `state_dict()` has the official key names and
layouts (Conv4d weights stored as (S, Co, Ci, S, S, S)); `official_checkpoint` writes a file in the released format.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet34

from corrlab.models.patch2pix.official import released_regressor_config

MEAN = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)


class LoopConv4d(nn.Module):
    """4-D convolution as NCNet writes it: for every position of the first dim, conv3d of the 3 neighbouring
    slices with the matching slice of a weight stored as (S, Co, Ci, S, S, S)."""

    def __init__(self, ci: int, co: int, s: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(s, co, ci, s, s, s) * 0.1)
        self.bias = nn.Parameter(torch.zeros(co))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.weight.shape[0]
        p = s // 2
        slices = []
        for i in range(x.shape[2]):
            acc = self.bias.reshape(1, -1, 1, 1, 1).expand(x.shape[0], -1, *x.shape[3:]).clone()
            for a in range(s):
                if 0 <= i + a - p < x.shape[2]:
                    acc = acc + F.conv3d(x[:, :, i + a - p], self.weight[a], padding=p)
            slices.append(acc)
        return torch.stack(slices, dim=2)


class ReferenceRegressor(nn.Module):
    """FeatRegressNet('pre', conv 512/512 kernels 3/3 strides 2/1, fc 512/256, psize 16)."""

    def __init__(self, in_channels: int = 518) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 512, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(512),
            nn.Conv2d(512, 512, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(512),
            nn.ReLU(),
            nn.MaxPool2d(8),
        )
        self.fc = nn.Sequential(
            nn.Linear(512, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Linear(512, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            nn.Linear(256, 5),
        )

    def forward(self, f0: torch.Tensor, f1: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(torch.cat([f0, f1], dim=1)).view(f0.shape[0], -1))


class ReferencePatch2Pix(nn.Module):
    def __init__(self, regressors: bool = True) -> None:
        super().__init__()
        self.extract = resnet34(weights=None)
        del self.extract.fc
        self.extract.layer3[0].conv1.stride = (1, 1)
        self.extract.layer3[0].downsample[0].stride = (1, 1)
        self.ncn = nn.Module()
        self.ncn.conv = nn.Sequential(LoopConv4d(1, 16), nn.ReLU(), LoopConv4d(16, 1), nn.ReLU())
        if regressors:
            self.regress_mid, self.regress_fine = ReferenceRegressor(), ReferenceRegressor()

    def forward_all(self, image: torch.Tensor) -> list[torch.Tensor]:
        e = self.extract
        x = (image - MEAN) / STD
        c1 = e.relu(e.bn1(e.conv1(x)))
        l1 = e.layer1(e.maxpool(c1))
        l2 = e.layer2(l1)
        return [x, c1, l1, l2, e.layer3(l2)]

    def coarse_volume(self, f0: torch.Tensor, f1: torch.Tensor):
        norm = lambda f: f / torch.pow(torch.sum(torch.pow(f, 2), dim=1) + 1e-6, 0.5).unsqueeze(1)
        f0, f1 = norm(f0), norm(f1)
        b, c, h0, w0 = f0.shape
        _, _, h1, w1 = f1.shape
        corr = torch.zeros(b, 1, h0, w0, h1, w1)
        for y, x in itertools.product(range(h0), range(w0)):
            corr[:, 0, y, x] = (f0[:, :, y, x][:, :, None, None] * f1).sum(dim=1)
        slices = [corr[:, :, i::2, j::2, k::2, l::2] for i, j, k, l in itertools.product(range(2), repeat=4)]
        corr, flat = torch.cat(slices, dim=1).max(dim=1, keepdim=True)
        deltas = (flat // 8, flat // 4 % 2, flat // 2 % 2, flat % 2)
        corr = mutual(corr)
        swapped = corr.permute(0, 1, 4, 5, 2, 3)
        corr = self.ncn.conv(corr) + self.ncn.conv(swapped).permute(0, 1, 4, 5, 2, 3)
        return mutual(corr), deltas

    @torch.no_grad()
    def coarse(self, image0: torch.Tensor, image1: torch.Tensor, ncn_thres: float = 0.0):
        """Mutual coarse matches (N, 4) and scores of a single pair, and the feature levels."""
        feats0, feats1 = self.forward_all(image0), self.forward_all(image1)
        corr, deltas = self.coarse_volume(feats0[-1], feats1[-1])
        _, _, h0, w0, h1, w1 = corr.shape
        rows, scores = [], []
        by_1 = torch.softmax(corr.reshape(h0 * w0, h1 * w1), dim=0)  # for each image-1 cell, over image-0 cells
        for cell in range(h1 * w1):
            score, best = by_1[:, cell].max(dim=0)
            rows.append((int(best) // w0, int(best) % w0, cell // w1, cell % w1))
            scores.append(float(score))
        by_0 = torch.softmax(corr.reshape(h0 * w0, h1 * w1), dim=1)
        for cell in range(h0 * w0):
            score, best = by_0[cell].max(dim=0)
            rows.append((cell // w0, cell % w0, int(best) // w1, int(best) % w1))
            scores.append(float(score))
        matches = []
        for i, j, k, l in rows:
            di, dj, dk, dl = (int(d[0, 0, i, j, k, l]) for d in deltas)
            y0, x0, y1, x1 = 2 * i + di, 2 * j + dj, 2 * k + dk, 2 * l + dl
            matches.append([8 * x0 + 4, 8 * y0 + 4, 8 * x1 + 4, 8 * y1 + 4])
        matches, scores = np.array(matches, np.float32), np.array(scores, np.float32)
        _, first, counts = np.unique(matches, axis=0, return_index=True, return_counts=True)
        mutual_ids = first[counts > 1]
        if len(mutual_ids):
            matches, scores = matches[mutual_ids], scores[mutual_ids]
        passing = np.nonzero(scores > ncn_thres)[0]
        if len(passing):
            matches, scores = matches[passing], scores[passing]
        return torch.from_numpy(matches), torch.from_numpy(scores), feats0, feats1

    def regress(self, regressor: ReferenceRegressor, feats0, feats1, matches: torch.Tensor):
        h0, w0 = feats0[0].shape[-2:]
        h1, w1 = feats1[0].shape[-2:]
        grid = np.arange(16) - 8
        patches = ([], [])
        for x0, y0, x1, y1 in matches.long().tolist():
            for side, (feats, x, y, h, w) in enumerate(((feats0, x0, y0, h0, w0), (feats1, x1, y1, h1, w1))):
                columns = []
                for level, ds in zip(range(4), (1, 2, 4, 8)):
                    ys = np.clip(np.floor_divide(y + grid, ds), 0, h // ds - 1)
                    xs = np.clip(np.floor_divide(x + grid, ds), 0, w // ds - 1)
                    columns.append(feats[level][0][:, ys][:, :, xs])
                patch = torch.cat(columns, dim=0)
                patches[side].append(patch / torch.pow(torch.sum(torch.pow(patch, 2), dim=0) + 1e-6, 0.5))
        outputs = [regressor(torch.stack(patches[0]), torch.stack(patches[1]))]
        out = torch.cat(outputs)
        offset = 16 * torch.tanh(F.relu(out[:, :4])) - 8
        refined = matches + offset
        refined = torch.stack(
            [
                refined[:, 0].clamp(0, w0),
                refined[:, 1].clamp(0, h0),
                refined[:, 2].clamp(0, w1),
                refined[:, 3].clamp(0, h1),
            ],
            dim=1,
        )
        return refined, torch.sigmoid(out[:, 4])

    @torch.no_grad()
    def predict(self, image0: torch.Tensor, image1: torch.Tensor, io_thres: float = 0.25) -> dict:
        """coarse (N, 4) with their scores, mid, fine (N, 4) and fine probabilities of the matches kept by the io
        threshold (all if none passes)."""
        coarse, scores, feats0, feats1 = self.coarse(image0, image1)
        mid, _ = self.regress(self.regress_mid, feats0, feats1, coarse)
        fine, probability = self.regress(self.regress_fine, feats0, feats1, mid)
        keep = probability > io_thres
        if not keep.any():
            keep = torch.ones_like(keep)
        return {
            "coarse": coarse[keep],
            "scores": scores[keep],
            "mid": mid[keep],
            "fine": fine[keep],
            "probability": probability[keep],
        }


def mutual(corr: torch.Tensor) -> torch.Tensor:
    b, _, h0, w0, h1, w1 = corr.shape
    by_0 = corr.reshape(b, h0 * w0, h1, w1)
    by_1 = corr.reshape(b, h0, w0, h1 * w1)
    ratio_0 = (by_0 / (by_0.max(dim=1, keepdim=True)[0] + 1e-5)).reshape(corr.shape)
    ratio_1 = (by_1 / (by_1.max(dim=3, keepdim=True)[0] + 1e-5)).reshape(corr.shape)
    return corr * (ratio_1 * ratio_0)


def randomize_(
    model: ReferencePatch2Pix, image0: torch.Tensor, image1: torch.Tensor, seed: int = 0
) -> ReferencePatch2Pix:
    """Random weights that give non-degenerate matches on (image0, image1): a centre-heavy consensus filter, then
    every BatchNorm's running statistics set to those of this pair (so regressed offsets and probabilities spread)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoopConv4d):
                module.weight.normal_(0, 0.05, generator=generator)
                module.weight[1, :, :, 1, 1, 1] += 1.0
                module.bias.normal_(0, 0.01, generator=generator)
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for module in norms:
            module.reset_running_stats()
            module.momentum = None
        model.train()
        model.predict(image0, image1)
        for module in norms:
            module.momentum = 0.1
    return model.eval()


def official_checkpoint(model: ReferencePatch2Pix, path: Path) -> Path:
    """Write `model` as patch2pix_pretrained.pth (or, without regressors, as ncn_ivd_5ep.pth: a bare state dict)."""
    if not hasattr(model, "regress_mid"):
        torch.save(model.state_dict(), path)
        return path
    torch.save(
        {
            "last_epoch": 24,
            "best_vals": [np.float64(1.5), 0.0, np.float64(2.5), 0.0],
            "backbone": "ResNet34",
            "feat_idx": [0, 1, 2, 3],
            "change_stride": True,
            "regressor_config": released_regressor_config(),
            "state_dict": model.state_dict(),
        },
        path,
    )
    return path
