"""Patch2Pix's training loss (train_patch2pix.py): class-balanced BCE on the inlier probabilities, labelled by the
squared Sampson distance of each stage's *input* matches, plus the squared Sampson distance of the refined matches
whose input was close enough (epipolar regression).  Distances are px^2 in the frame the network sees."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from corrlab.geometry.epipolar import sampson_distance


def squared_sampson(matches: Tensor, fundamental: Tensor) -> Tensor:
    """Squared Sampson distance (px^2) of matches (N, 4) = (x0, y0, x1, y1) under F (x1^T F x0 = 0)."""
    return sampson_distance(matches[:, :2], matches[:, 2:], fundamental, squared=True)


def balanced_bce(probability: Tensor, positive: Tensor) -> Tensor:
    """mean(w * BCE) with w = N_neg / N_pos on positives and 1 on negatives."""
    weights = positive * (1 - positive).sum() / positive.sum() + (1 - positive)
    return (weights * F.binary_cross_entropy(probability, positive, reduction="none")).mean()


class Patch2PixLoss(nn.Module):
    """total = cls_weight * mean over pairs of (cls_mid + cls_fine) + mean over pairs of
    (epi_weights[0] * epi_mid + epi_weights[1] * epi_fine).

    cls_mid labels mid probabilities by d(anchor) < cls_thresholds[0], cls_fine labels fine probabilities by
    d(mid) < cls_thresholds[1]; epi_mid = mean d(mid) over d(anchor) < epi_thresholds[0], epi_fine = mean d(fine)
    over d(mid) < epi_thresholds[1] (0 when empty).  A pair with no positive label at either stage is skipped, and its
    epipolar term too when neither selection has a match (each term is averaged over the pairs that have it).
    """

    def __init__(
        self,
        cls_thresholds: Sequence[float] = (50.0, 5.0),
        epi_thresholds: Sequence[float] = (50.0, 5.0),
        cls_weight: float = 10.0,
        epi_weights: Sequence[float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        self.cls_thresholds = tuple(float(v) for v in cls_thresholds)
        self.epi_thresholds = tuple(float(v) for v in epi_thresholds)
        self.cls_weight = float(cls_weight)
        self.epi_weights = tuple(float(v) for v in epi_weights)

    def forward(
        self,
        anchors: Sequence[Tensor],
        mid: Sequence[Tensor],
        fine: Sequence[Tensor],
        mid_probability: Sequence[Tensor],
        fine_probability: Sequence[Tensor],
        fundamentals: Sequence[Tensor],
    ) -> dict[str, Tensor]:
        terms: dict[str, list[Tensor]] = {k: [] for k in ("cls", "epi", "cls_mid", "cls_fine", "epi_mid", "epi_fine")}
        for anchor, m, f, mp, fp, fundamental in zip(
            anchors, mid, fine, mid_probability, fine_probability, fundamentals
        ):
            d_anchor = squared_sampson(anchor, fundamental).detach()
            d_mid = squared_sampson(m, fundamental)
            d_fine = squared_sampson(f, fundamental)
            mid_label = (d_anchor < self.cls_thresholds[0]).to(mp.dtype)
            fine_label = (d_mid.detach() < self.cls_thresholds[1]).to(fp.dtype)
            if mid_label.sum() == 0 or fine_label.sum() == 0:
                continue
            cls_mid, cls_fine = balanced_bce(mp, mid_label), balanced_bce(fp, fine_label)
            terms["cls_mid"].append(cls_mid)
            terms["cls_fine"].append(cls_fine)
            terms["cls"].append(cls_mid + cls_fine)
            mid_selected = d_anchor < self.epi_thresholds[0]
            fine_selected = d_mid.detach() < self.epi_thresholds[1]
            if not (mid_selected.any() or fine_selected.any()):
                continue
            epi_mid = d_mid[mid_selected].mean() if mid_selected.any() else d_mid.new_zeros(())
            epi_fine = d_fine[fine_selected].mean() if fine_selected.any() else d_fine.new_zeros(())
            terms["epi_mid"].append(epi_mid)
            terms["epi_fine"].append(epi_fine)
            terms["epi"].append(self.epi_weights[0] * epi_mid + self.epi_weights[1] * epi_fine)
        valid = len(terms["cls"])
        zero = torch.zeros((), device=fundamentals[0].device)
        if valid == 0:
            return {"total": zero, "valid_pairs": zero}
        means = {name: torch.stack(values).mean() if values else zero for name, values in terms.items()}
        total = self.cls_weight * means["cls"] + means["epi"]
        return {"total": total, **means, "valid_pairs": torch.tensor(float(valid), device=total.device)}
