"""A minimal trainable matcher used only by tests to exercise the training loop (not a method)."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from corrlab.geometry.homography import warp_points
from corrlab.matches import Matches
from corrlab.modules.base import MatchingModule


class TinyMatcher(MatchingModule):
    """Two conv layers -> stride-4 descriptors; mutual nearest neighbours; InfoNCE on homography GT."""

    def __init__(self, dim: int = 16, optimizer=None, scheduler=None) -> None:
        super().__init__(optimizer=optimizer, scheduler=scheduler)
        self.net = nn.Sequential(
            nn.Conv2d(3, dim, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(dim, dim, 3, stride=2, padding=1)
        )

    def describe(self, image: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(image), dim=1)

    @staticmethod
    def grid(h: int, w: int, device) -> torch.Tensor:
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        return torch.stack([xs, ys], -1).reshape(-1, 2).float() * 4 + 1.5

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        d0, d1 = self.describe(batch["image0"]), self.describe(batch["image1"])
        _, c, h, w = d0.shape
        points = self.grid(h, w, d0.device)
        losses = []
        for b in range(d0.shape[0]):
            target = warp_points(batch["H_0to1"][b], points)
            cell = ((target - 1.5) / 4).round().long()
            ok = (cell[:, 0] >= 0) & (cell[:, 0] < w) & (cell[:, 1] >= 0) & (cell[:, 1] < h)
            logits = d0[b].reshape(c, -1).t()[ok] @ d1[b].reshape(c, -1) / 0.1
            losses.append(F.cross_entropy(logits, cell[ok, 1] * w + cell[ok, 0]))
        total = torch.stack(losses).mean()
        return {"total": total, "nce": total.detach()}

    @torch.no_grad()
    def match(self, batch: dict) -> Matches:
        d0, d1 = self.describe(batch["image0"]), self.describe(batch["image1"])
        _, c, h, w = d0.shape
        points = self.grid(h, w, d0.device)
        parts = []
        for b in range(d0.shape[0]):
            sim = d0[b].reshape(c, -1).t() @ d1[b].reshape(c, -1)
            best01, best10 = sim.argmax(1), sim.argmax(0)
            mutual = best10[best01] == torch.arange(len(best01), device=sim.device)
            i0 = mutual.nonzero()[:, 0]
            parts.append(Matches(points[i0], points[best01[i0]], sim[i0, best01[i0]], torch.full_like(i0, b)))
        return Matches.concat(parts)


class AnyPairMatcher(TinyMatcher):
    """The tiny matcher with a loss that needs no ground truth (agreement of the pooled descriptors of the two
    images), so it trains on any datamodule's batches: homography, posed, keypoint or aligned pairs."""

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        d0 = F.adaptive_avg_pool2d(self.describe(batch["image0"]), 4)
        d1 = F.adaptive_avg_pool2d(self.describe(batch["image1"]), 4)
        total = 1 - (d0 * d1).sum(1).mean()
        return {"total": total, "agreement": total.detach()}


class SlowMatcher(TinyMatcher):
    """The tiny matcher, `step_delay_s` slower per training step: time for a test to signal a run mid-epoch."""

    def __init__(self, step_delay_s: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.step_delay_s = step_delay_s

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        time.sleep(self.step_delay_s)
        return super().compute_losses(batch)
