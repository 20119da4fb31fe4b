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
    warp: optional (B, Hw, Ww, 2) absolute position, in pixels of the batch image 1, of every cell of a
      grid over image 0 (NaN where there is none).
    certainty: optional (B, Hw, Ww) confidence of `warp`.
    warp_frame: (H0, W0) of the image-0 frame the warp grid spans.  None: the grid is the batch image 0
      itself (Hw, Ww = H0, W0); a coarser grid (e.g. half resolution) must say the frame it covers, its cell
      (i, j) then sits at image-0 pixel ((j + 0.5) W0 / Ww - 0.5, (i + 0.5) H0 / Hw - 0.5).
    extras: per-match tensors (N, ...), e.g. PUMP's scale/rotation code; selected and concatenated with the matches.
    """

    kpts0: Tensor
    kpts1: Tensor
    scores: Tensor
    batch_idx: Tensor
    warp: Tensor | None = None
    certainty: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)
    warp_frame: tuple[int, int] | None = None

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
        if self.certainty is not None and self.warp is None:
            raise ValueError("certainty without a warp")
        if self.warp_frame is not None:
            self.warp_frame = (int(self.warp_frame[0]), int(self.warp_frame[1]))
        for key, value in self.extras.items():
            if value.shape[:1] != (n,):
                raise ValueError(f"extras['{key}'] must have one entry per match ({n}, ...), got {tuple(value.shape)}")

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
    def dense(cls, warp: Tensor, certainty: Tensor | None = None, warp_frame: tuple[int, int] | None = None) -> Matches:
        """A dense prediction without sparse matches (corrlab.dense_sampling.DenseSampler draws them)."""
        empty = cls.empty(warp.device)
        return cls(empty.kpts0, empty.kpts1, empty.scores, empty.batch_idx, warp, certainty, warp_frame=warp_frame)

    @classmethod
    def concat(cls, parts: list[Matches]) -> Matches:
        """Concatenate the matches of several pairs (their batch_idx already set), with their extras and, when
        every part has one, their warps and certainties stacked in part order (one part per pair)."""
        if not parts:
            return cls.empty()
        keys = set(parts[0].extras)
        if any(set(p.extras) != keys for p in parts):
            raise ValueError(f"parts have different extras: {[sorted(p.extras) for p in parts]}")
        with_warp = [p.warp is not None for p in parts]
        if any(with_warp) and not all(with_warp):
            raise ValueError("some parts have a warp and others not: give every pair a warp (NaN where none) or none")
        frames = {p.warp_frame for p in parts}
        if len(frames) > 1:
            raise ValueError(f"parts have warps over different frames {sorted(frames, key=str)}")
        with_certainty = [p.certainty is not None for p in parts]
        if any(with_certainty) and not all(with_certainty):
            raise ValueError("some parts have a certainty and others not")
        return cls(
            kpts0=torch.cat([p.kpts0 for p in parts]),
            kpts1=torch.cat([p.kpts1 for p in parts]),
            scores=torch.cat([p.scores for p in parts]),
            batch_idx=torch.cat([p.batch_idx for p in parts]),
            warp=torch.cat([p.warp for p in parts]) if all(with_warp) else None,
            certainty=torch.cat([p.certainty for p in parts]) if all(with_certainty) else None,
            extras={k: torch.cat([p.extras[k] for p in parts]) for k in sorted(keys)},
            warp_frame=frames.pop(),
        )

    def __len__(self) -> int:
        return self.kpts0.shape[0]

    def pair(self, b: int) -> Matches:
        """The matches of pair `b` of the batch (batch_idx kept), its extras and its warp / certainty (1, Hw, Ww, ...)."""
        keep = self.batch_idx == b
        return Matches(
            self.kpts0[keep],
            self.kpts1[keep],
            self.scores[keep],
            self.batch_idx[keep],
            warp=None if self.warp is None else self.warp[b : b + 1],
            certainty=None if self.certainty is None else self.certainty[b : b + 1],
            extras={k: v[keep] for k, v in self.extras.items()},
            warp_frame=self.warp_frame,
        )

    def to(self, device: torch.device | str) -> Matches:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in values.items()}
        moved["extras"] = {k: v.to(device) for k, v in self.extras.items()}
        return Matches(**moved)
