"""NCNet's weakly-supervised loss (ncnet/train.py `weak_loss`, softmax normalisation): the mean best-match softmax
score of negative pairs minus that of positive pairs."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def matching_score(corr: Tensor) -> Tensor:
    """(mean over image-1 cells of the max softmax over image-0 cells + the same the other way) / 2, per batch."""
    b, _, i, j, k, l = corr.shape
    flat = corr.reshape(b, i * j, k * l)
    best_for_1 = torch.softmax(flat, dim=1).max(dim=1).values
    best_for_0 = torch.softmax(flat, dim=2).max(dim=2).values
    return (best_for_1.mean() + best_for_0.mean()) / 2


class NCNetWeakLoss(nn.Module):
    """loss = score(negative pairs) - score(positive pairs); the caller builds negative pair i from image 0 of pair
    i + 1 and image 1 of pair i (image 0 rolled by one along the batch, as NCNet does)."""

    def forward(self, positive: Tensor, negative: Tensor) -> dict[str, Tensor]:
        score_positive, score_negative = matching_score(positive), matching_score(negative)
        return {
            "total": score_negative - score_positive,
            "score_positive": score_positive.detach(),
            "score_negative": score_negative.detach(),
        }
