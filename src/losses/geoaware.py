"""GeoAware-SC training objective (utils/utils_losses.py of the reference): CLIP-style sparse contrastive loss on
the mutually visible keypoints + dense soft-argmax flow loss, and pose-variant pair augmentation (double flip,
self flip) whose terms use the dense loss only; the weighted mean of the terms."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from corrlab.models.geoaware.flip import flip_queries, permutation
from corrlab.models.geoaware.readout import BETA


def clip_loss(z0: Tensor, z1: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric cross-entropy of logit_scale * z0 z1^T against the diagonal (K x K)."""
    logits = logit_scale * z0 @ z1.T
    labels = torch.arange(len(z0), device=z0.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def self_contrastive_loss(desc: Tensor, grid: int) -> Tensor:
    """The reference's optional self-contrastive term without an instance mask: minus the mean dot product with
    each of the 8 neighbours (wrapped rows zeroed) plus 0.1 x the sum of dot products of H*W random non-neighbour
    pairs.  desc (grid*grid, C)."""
    fmap = desc.T.reshape(1, -1, grid, grid)
    local = fmap.new_zeros(())
    for i, j in ((0, 1), (1, 0), (1, 1), (1, -1), (0, -1), (-1, 0), (-1, -1), (-1, 1)):
        dot = (fmap * torch.roll(fmap, shifts=(i, j), dims=(2, 3))).sum(1)
        if i > 0:
            dot[:, :i, :] = 0
        if j > 0:
            dot[:, :, :j] = 0
        if i < 0:
            dot[:, i:, :] = 0
        if j < 0:
            dot[:, :, j:] = 0
        local = local - dot.mean()
    n = grid * grid
    a, b, c, d = (torch.randint(0, grid, (n,), device=desc.device) for _ in range(4))
    far = ((c - a).abs() > 1) | ((d - b).abs() > 1)
    a, b, c, d = a[far], b[far], c[far], d[far]
    return local + 0.1 * (fmap[0, :, a, b] * fmap[0, :, c, d]).sum()


class GeoAwareLoss(nn.Module):
    """Per-pair loss.  Keypoints in the letterboxed frame (image_size), patch coordinates p = kp * grid / size
    (continuous for the dense flow target, floored for descriptor lookup).  Thresholds: target bbox max side in
    patch units (jitter std = gaussian_augment * T / 2).  The soft-argmax grids (linspace(-1, 1, grid)) are
    parameters, trained with the post-processor, as in the reference's Correlation2Displacement."""

    def __init__(
        self,
        grid: int = 60,
        image_size: int = 840,
        dense: bool = True,
        beta: float = BETA,
        gaussian_augment: float = 0.1,
        double_flip: float = 1.0,
        self_flip: float = 0.25,
        self_contrast_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.grid, self.image_size, self.dense, self.beta = grid, image_size, dense, beta
        self.gaussian_augment = gaussian_augment
        self.double_flip, self.self_flip = double_flip, self_flip
        self.self_contrast_weight = self_contrast_weight
        self.x_normal = nn.Parameter(torch.linspace(-1, 1, grid))
        self.y_normal = nn.Parameter(torch.linspace(-1, 1, grid))

    @property
    def uses_flips(self) -> bool:
        return self.double_flip > 0 or self.self_flip > 0

    def patches(self, kpts: Tensor) -> tuple[Tensor, Tensor]:
        """Continuous patch coordinates (K, 2) and flat floored indices (K,)."""
        p = kpts.float() * (self.grid / self.image_size)
        cell = p.to(torch.int64)
        return p, cell[:, 1] * self.grid + cell[:, 0]

    def flow_loss(self, d0: Tensor, d1: Tensor, k0: Tensor, k1: Tensor, threshold: float) -> Tensor:
        """Mean EPE between the soft-argmax flow at the source patches and (p1 - p0 + jitter), in patches."""
        p0, i0 = self.patches(k0)
        p1, _ = self.patches(k1)
        target = p1 - p0
        if self.gaussian_augment > 0:
            target = target + torch.randn_like(target) * (self.gaussian_augment * threshold / 2)
        rows = d0[i0] @ d1.T
        prob = F.softmax((rows - rows.max(dim=-1, keepdim=True).values) / self.beta, dim=-1).view(
            -1, self.grid, self.grid
        )
        x = (prob.sum(dim=1) * self.x_normal).sum(-1)
        y = (prob.sum(dim=2) * self.y_normal).sum(-1)
        mapping = (torch.stack([x, y], -1) + 1) * (self.grid - 1) / 2
        source = torch.stack([i0 % self.grid, i0 // self.grid], -1).float()
        return (mapping - source - target).norm(dim=-1).mean()

    def forward(
        self,
        desc: Sequence[Tensor],
        kpts: Sequence[Tensor],
        valid: Tensor,
        thresholds: Sequence[float],
        logit_scale: Tensor,
        desc_flip: Sequence[Tensor] | None = None,
        groups: Sequence[tuple[int, ...]] = (),
        source: tuple[Tensor, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """desc: (g*g, C) L2-normalised descriptors of image 0 and 1; kpts: (S, 2) slots, `valid` mutually visible;
        thresholds: (T0, T1) bbox sizes in patch units; desc_flip: descriptors of the mirrored images.
        source: image 0's own keypoints (S, 2) and their visibility (S,), for the self flip, which (as the
        reference) also uses those invisible in image 1; default: kpts[0] at the `valid` slots."""
        k0, k1 = kpts[0][valid], kpts[1][valid]
        _, i0 = self.patches(k0)
        _, i1 = self.patches(k1)
        out = {"clip": clip_loss(desc[0][i0], desc[1][i1], logit_scale)}
        pair = out["clip"]
        if self.dense:
            out["dense"] = self.flow_loss(desc[0], desc[1], k0, k1, thresholds[1])
            pair = pair + out["dense"]
        terms, weights = [pair], [1.0]
        if self.uses_flips:
            if desc_flip is None:
                raise ValueError("the flip augmentation needs the descriptors of the mirrored images")
            perm = permutation(groups, len(valid))
            f0, f1 = (flip_queries(k, self.image_size, perm) for k in kpts)
            moved = valid[torch.as_tensor(perm, device=valid.device)]
            augmented = self.flow_loss if self.dense else self.sparse_loss(logit_scale)
            if self.double_flip > 0 and moved.any():
                out["double_flip"] = augmented(desc_flip[0], desc_flip[1], f0[moved], f1[moved], thresholds[1])
                terms.append(out["double_flip"])
                weights.append(self.double_flip)
            own, own_valid = (kpts[0], valid) if source is None else source
            own_flipped = flip_queries(own, self.image_size, perm)
            self_vis = own_valid[torch.as_tensor(perm, device=valid.device)] & own_valid
            if self.self_flip > 0 and self_vis.any():
                out["self_flip"] = augmented(desc_flip[0], desc[0], own_flipped[self_vis], own[self_vis], thresholds[0])
                terms.append(out["self_flip"])
                weights.append(self.self_flip)
        total = sum(w * t for w, t in zip(weights, terms)) / sum(weights)
        if self.self_contrast_weight > 0:
            # the reference scales by the weight twice (utils_losses.calculate_loss); kept for fidelity
            w = self.self_contrast_weight
            out["self_contrast"] = (
                (self_contrastive_loss(desc[0], self.grid) + self_contrastive_loss(desc[1], self.grid)) / 2 * w * w
            )
            total = total + out["self_contrast"]
        out["total"] = total
        return out

    def sparse_loss(self, logit_scale: Tensor):
        """Augmented-pair term without the dense objective: the CLIP loss on the floored patches."""

        def loss(d0: Tensor, d1: Tensor, k0: Tensor, k1: Tensor, threshold: float) -> Tensor:
            return clip_loss(d0[self.patches(k0)[1]], d1[self.patches(k1)[1]], logit_scale)

        return loss
