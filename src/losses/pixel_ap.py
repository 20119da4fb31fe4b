"""PUMP's self-supervised pixel AP loss on pairs related by a known homography (R2D2's sampler)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from corrlab.geometry.homography import warp_points
from corrlab.losses.ap_loss import APLoss


def ring_offsets(inner: float, outer: float) -> Tensor:
    """Integer (dx, dy) offsets with inner^2 <= dx^2 + dy^2 <= outer^2, row-major, as (K, 2)."""
    r = int(outer)
    dy, dx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    d2 = dx**2 + dy**2
    keep = (d2 >= inner**2) & (d2 <= outer**2)
    return torch.stack([dx[keep], dy[keep]], 1)


class NeighbourSampler(nn.Module):
    """Scores and labels for the AP of random query pixels of image 0 (R2D2 / PUMP `NghSampler`).

    Queries: (H - 2 border)(W - 2 border) / query_step^2 random pixels inside a `border` margin
    (the same positions for every pair of the batch); a query counts when its ground-truth target is
    inside image 1.  Positives: the pixels within `pos_radius` of the target (13 for 2 px);
    negatives: those with neg_radius <= distance <= `neighbourhood` (104 for 4..7 px); distractors:
    as many random pixels of every image 1 of the batch, scored 0 when closer than `neg_radius` to the
    target of the same pair.
    """

    def __init__(
        self,
        neighbourhood: int = 7,
        pos_radius: float = 2,
        neg_radius: float = 4,
        border: int = 16,
        query_step: int = 8,
        distractor_step: int = 8,
    ) -> None:
        super().__init__()
        if not 0 <= pos_radius < neg_radius <= neighbourhood <= border:
            raise ValueError("need 0 <= pos_radius < neg_radius <= neighbourhood <= border")
        self.neg_radius = neg_radius
        self.border = border
        self.query_step = query_step
        self.distractor_step = distractor_step
        self.register_buffer("pos_offsets", ring_offsets(0, pos_radius), persistent=False)
        self.register_buffer("neg_offsets", ring_offsets(neg_radius, neighbourhood), persistent=False)

    def random_pixels(self, height: int, width: int, step: int, device) -> Tensor:
        n = (height - 2 * self.border) * (width - 2 * self.border) // step**2
        x = torch.randint(self.border, width - self.border, (n,), device=device)
        y = torch.randint(self.border, height - self.border, (n,), device=device)
        return torch.stack([x, y], 1)

    def forward(self, desc0: Tensor, desc1: Tensor, H_0to1: Tensor) -> dict[str, Tensor]:
        """The sampled problem, N = B * queries: `query` (N, C) descriptors, `batch` (N,), `around`
        (N, P + Q) flat pixels of image 1 (positives first), `distractors` (B * D, C), `keep` (N, B * D)
        and `valid` (N,)."""
        b, c, h, w = desc0.shape
        queries = self.random_pixels(h, w, self.query_step, desc0.device)
        targets = torch.stack([warp_points(H_0to1[i], queries.float()) for i in range(b)])  # (B, Q, 2)
        target_px = torch.floor(targets + 0.5).long()
        valid = (target_px[..., 0] >= 0) & (target_px[..., 0] < w) & (target_px[..., 1] >= 0) & (target_px[..., 1] < h)
        query = desc0[:, :, queries[:, 1], queries[:, 0]].permute(0, 2, 1).reshape(-1, c)

        around = target_px[:, :, None] + torch.cat([self.pos_offsets, self.neg_offsets])  # (B, Q, K, 2)
        around = around[..., 1].clamp(0, h - 1) * w + around[..., 0].clamp(0, w - 1)

        distractors = self.random_pixels(h, w, self.distractor_step, desc0.device)  # same pixels in every image 1
        distractor_desc = desc1[:, :, distractors[:, 1], distractors[:, 0]].permute(0, 2, 1).reshape(-1, c)
        near = torch.cdist(target_px.float(), distractors.float()) < self.neg_radius  # (B, Q, D)
        same_image = torch.eye(b, dtype=torch.bool, device=desc0.device)[:, None, :, None]  # (B, 1, B, 1)
        keep = ~(near[:, :, None, :] & same_image)
        batch = torch.arange(b, device=desc0.device).repeat_interleave(len(queries))
        return {
            "query": query,
            "batch": batch,
            "around": around.reshape(len(query), -1),
            "distractors": distractor_desc,
            "keep": keep.reshape(len(query), -1),
            "valid": valid.reshape(-1),
        }


class PixelAPLoss(nn.Module):
    """1 - AP per query pixel, averaged over valid queries (PUMP: 20 bins, scores in [0, 1]).

    The AP of `chunk` queries at a time is computed under activation checkpointing, so the (N, M)
    score matrix of a whole batch never exists with its intermediates.
    """

    def __init__(self, num_bins: int = 20, sampler: NeighbourSampler | None = None, chunk: int = 1024) -> None:
        super().__init__()
        self.ap = APLoss(num_bins, 0.0, 1.0)
        self.sampler = sampler or NeighbourSampler()
        self.chunk = chunk

    def chunk_ap(
        self, query: Tensor, batch: Tensor, around: Tensor, keep: Tensor, desc1: Tensor, distractors: Tensor
    ) -> Tensor:
        b, c = desc1.shape[:2]
        local = desc1.view(b, c, -1)[batch[:, None], :, around]  # (n, P + Q, C)
        scores = torch.cat([torch.einsum("nc,nkc->nk", query, local), (query @ distractors.T) * keep], 1)
        labels = torch.zeros_like(scores, dtype=torch.bool)
        labels[:, : len(self.sampler.pos_offsets)] = True
        return self.ap(scores, labels)

    def forward(self, desc0: Tensor, desc1: Tensor, H_0to1: Tensor) -> Tensor:
        """desc0, desc1 (B, C, H, W) L2-normalised; H_0to1 (B, 3, 3) in pixels of these maps."""
        sample = self.sampler(desc0, desc1, H_0to1)
        valid = sample["valid"]
        if not valid.any():
            return desc0.sum() * 0
        per_query = [sample[k][valid] for k in ("query", "batch", "around", "keep")]
        aps = []
        for i in range(0, int(valid.sum()), self.chunk):
            part = [t[i : i + self.chunk] for t in per_query] + [desc1, sample["distractors"]]
            aps.append(
                checkpoint(self.chunk_ap, *part, use_reentrant=False)
                if torch.is_grad_enabled()
                else self.chunk_ap(*part)
            )
        return (1 - torch.cat(aps)).mean()
