"""Differentiable average precision through a fixed triangular quantiser (R2D2 / PUMP)."""

from __future__ import annotations

from torch import Tensor, nn


class APLoss(nn.Module):
    """AP of every row of `scores` (N, M) in [low, high] given boolean `labels` (N, M).

    Scores are softly assigned to `num_bins` triangular bins centred on equally spaced levels
    (each score splits between its two nearest bins; out-of-range scores fall in the end bins),
    which is what R2D2's Conv1d quantiser computes, without its (N, 2 * num_bins, M) tensor.
    AP = sum_k precision_k * recall_k over bins ordered from high to low scores.
    """

    def __init__(self, num_bins: int = 20, low: float = 0.0, high: float = 1.0) -> None:
        super().__init__()
        if not 2 <= num_bins <= 100 or high <= low:
            raise ValueError(f"need 2 <= num_bins <= 100 and low < high, got {num_bins}, [{low}, {high}]")
        self.num_bins = num_bins
        self.low = low
        self.high = high

    def soft_histograms(self, scores: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Per row: soft count of all scores and of positive ones in each bin, (N, num_bins) each.  A NaN
        score is put in bin 0 with NaN shares, so its row's AP is NaN (for the non-finite guard to skip the
        step) instead of a NaN cast to an out-of-range bin index."""
        position = ((self.high - scores) / (self.high - self.low) * (self.num_bins - 1)).clamp(0, self.num_bins - 1)
        lower = position.detach().nan_to_num(0.0).floor().clamp(0, self.num_bins - 2).long()
        upper_share = position - lower
        lower_share = 1 - upper_share
        counts = scores.new_zeros(len(scores), self.num_bins)
        counts = counts.scatter_add(1, lower, lower_share).scatter_add(1, lower + 1, upper_share)
        positive = labels.to(scores.dtype)
        hits = scores.new_zeros(len(scores), self.num_bins)
        hits = hits.scatter_add(1, lower, lower_share * positive).scatter_add(1, lower + 1, upper_share * positive)
        return counts, hits

    def forward(self, scores: Tensor, labels: Tensor) -> Tensor:
        if scores.shape != labels.shape:
            raise ValueError(
                f"scores and labels must have the same shape, got {tuple(scores.shape)} and {tuple(labels.shape)}"
            )
        counts, hits = self.soft_histograms(scores, labels)
        precision = hits.cumsum(-1) / (1e-16 + counts.cumsum(-1))
        recall = hits / hits.sum(-1, keepdim=True)
        return (precision * recall).sum(-1)
