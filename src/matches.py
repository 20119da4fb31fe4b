"""The one output every method gives: matched keypoints with scores, optionally a dense warp."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor


@dataclass
class Matches:
    """Correspondences for a batch of pairs, in pixels of the batch images.

    kpts0, kpts1: (N, 2) as (x, y), pixel centres at integer coordinates.
    scores: (N,) higher is better.  batch_idx: (N,) index of the pair in the batch.
    warp: optional (B, H0, W0, 2) absolute position in image1 of every pixel of image0.
    certainty: optional (B, H0, W0) confidence of `warp`.
    """

    kpts0: Tensor
    kpts1: Tensor
    scores: Tensor
    batch_idx: Tensor
    warp: Tensor | None = None
    certainty: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.kpts0.shape[0]
        if self.kpts0.shape != (n, 2) or self.kpts1.shape != (n, 2):
            raise ValueError(f"kpts0/kpts1 must be (N, 2), got {tuple(self.kpts0.shape)} and {tuple(self.kpts1.shape)}")
        if self.scores.shape != (n,) or self.batch_idx.shape != (n,):
            raise ValueError(
                f"scores and batch_idx must be ({n},), got {tuple(self.scores.shape)} and {tuple(self.batch_idx.shape)}"
            )
        if self.warp is not None and (self.warp.ndim != 4 or self.warp.shape[-1] != 2):
            raise ValueError(f"warp must be (B, H, W, 2), got {tuple(self.warp.shape)}")
        if self.certainty is not None and self.warp is not None and self.certainty.shape != self.warp.shape[:-1]:
            raise ValueError(f"certainty must be {tuple(self.warp.shape[:-1])}, got {tuple(self.certainty.shape)}")

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> Matches:
        """No matches at all."""
        return cls(
            kpts0=torch.zeros(0, 2, device=device),
            kpts1=torch.zeros(0, 2, device=device),
            scores=torch.zeros(0, device=device),
            batch_idx=torch.zeros(0, dtype=torch.long, device=device),
        )

    @classmethod
    def concat(cls, parts: list[Matches]) -> Matches:
        """Concatenate sparse matches of several pairs (their batch_idx already set)."""
        if not parts:
            return cls.empty()
        return cls(
            kpts0=torch.cat([p.kpts0 for p in parts]),
            kpts1=torch.cat([p.kpts1 for p in parts]),
            scores=torch.cat([p.scores for p in parts]),
            batch_idx=torch.cat([p.batch_idx for p in parts]),
        )

    def __len__(self) -> int:
        return self.kpts0.shape[0]

    def pair(self, b: int) -> Matches:
        """The sparse matches of pair `b` of the batch (batch_idx kept)."""
        keep = self.batch_idx == b
        return Matches(self.kpts0[keep], self.kpts1[keep], self.scores[keep], self.batch_idx[keep])

    def to(self, device: torch.device | str) -> Matches:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in values.items()}
        moved["extras"] = {k: v.to(device) for k, v in self.extras.items()}
        return Matches(**moved)
