"""Dense warps as correspondences: bilinear lookup at query points, and sparse matches sampled from a warp +
certainty (top-k, threshold, or RoMa / DKM's balanced sampling) so every dense method gets MMA and pose."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.matches import Matches

MODES = ("topk", "threshold", "balanced")


def grid_points(grid_size: tuple[int, int], frame: tuple[int, int], device: torch.device | str = "cpu") -> Tensor:
    """(Hw * Ww, 2) image-0 pixel positions (x, y) of the cells of a warp grid spanning `frame` (H0, W0),
    row-major; pixel centres at integers, so a grid of the frame's own size gives the integer pixels."""
    (hw, ww), (h0, w0) = grid_size, frame
    ys = (torch.arange(hw, dtype=torch.float32, device=device) + 0.5) * h0 / hw - 0.5
    xs = (torch.arange(ww, dtype=torch.float32, device=device) + 0.5) * w0 / ww - 0.5
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x, y], dim=-1).reshape(-1, 2)


def sample_warp(warp: Tensor, points: Tensor, frame: tuple[int, int] | None = None) -> Tensor:
    """Bilinear lookup of a dense warp (B, Hw, Ww, 2) at image-0 points (B, Q, 2), in pixels of `frame`
    (H0, W0; None: the warp grid's own size), pixel centres at integers.  Outside the grid it blends with zeros."""
    _, hw, ww, _ = warp.shape
    h0, w0 = frame if frame is not None else (hw, ww)
    grid = torch.stack([(points[..., 0] + 0.5) / w0 * 2 - 1, (points[..., 1] + 0.5) / h0 * 2 - 1], dim=-1)
    sampled = F.grid_sample(warp.permute(0, 3, 1, 2), grid[:, None].to(warp), mode="bilinear", align_corners=False)
    return sampled[:, :, 0].permute(0, 2, 1)


def warp_frame_for(matches: Matches, image0_size: tuple[int, int]) -> tuple[int, int]:
    """The image-0 frame of `matches.warp`; a warp whose grid is not the image and says no frame is refused."""
    grid = tuple(matches.warp.shape[1:3])
    if matches.warp_frame is not None:
        return matches.warp_frame
    if grid != tuple(image0_size):
        raise ValueError(
            f"the warp grid is {grid[0]}x{grid[1]} but image 0 is {image0_size[0]}x{image0_size[1]}: a warp at another "
            "resolution must set Matches.warp_frame to the image-0 frame (H0, W0) it spans"
        )
    return grid


@dataclass
class DenseSampler:
    """Sparse matches from a dense warp + certainty.

    mode: topk (the `num_matches` most certain cells with certainty >= threshold) | threshold (every cell with
    certainty >= threshold) | balanced (RoMa / DKM: certainty above `threshold` counts as 1, draw 4 x num_matches
    cells by certainty without replacement, estimate the density of the drawn 4-D matches with a Gaussian KDE of
    std `kde_std` in [-1, 1]-normalised coordinates, then draw num_matches with probability 1 / (1 + density),
    ~0 where density < min_density).  Cells whose warp is NaN or outside image 1 are never drawn.
    Scores = certainty.  `seed` fixes the draws.
    """

    mode: str = "balanced"
    num_matches: int = 5000
    threshold: float = 0.05
    kde_std: float = 0.1
    min_density: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"dense sampling mode must be one of {MODES}, got '{self.mode}'")

    def __call__(self, matches: Matches, image0_size: tuple[int, int], image1_size: tuple[int, int]) -> Matches:
        """Sparse matches of every pair drawn from `matches.warp` / `certainty` (certainty 1 everywhere when
        absent), returned with the warp, certainty and frame kept, so dense and sparse benchmarks both read them.
        A dense method's match() ends with `return sampler(Matches.dense(warp, certainty), size0, size1)`."""
        if matches.warp is None:
            raise ValueError("DenseSampler needs matches with a warp")
        frame = warp_frame_for(matches, image0_size)
        warp = matches.warp
        certainty = matches.certainty if matches.certainty is not None else torch.ones(warp.shape[:-1]).to(warp)
        points0 = grid_points(tuple(warp.shape[1:3]), frame, device=warp.device)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        parts = []
        for b in range(warp.shape[0]):
            points1 = warp[b].reshape(-1, 2)
            score = certainty[b].reshape(-1).float().clone()
            h1, w1 = image1_size
            inside = torch.isfinite(points1).all(-1) & (points1[:, 0] >= -0.5) & (points1[:, 1] >= -0.5)
            inside &= (points1[:, 0] <= w1 - 0.5) & (points1[:, 1] <= h1 - 0.5)
            score = torch.where(inside & torch.isfinite(score), score, torch.zeros_like(score))
            index = self.select(points0, points1, score, frame, image1_size, generator)
            parts.append(Matches(points0[index], points1[index], score[index], torch.full_like(index, b)))
        sparse = Matches.concat(parts)
        return Matches(
            sparse.kpts0,
            sparse.kpts1,
            sparse.scores,
            sparse.batch_idx,
            matches.warp,
            matches.certainty,
            warp_frame=matches.warp_frame,
        )

    def select(
        self,
        points0: Tensor,
        points1: Tensor,
        score: Tensor,
        frame: tuple[int, int],
        image1_size: tuple[int, int],
        generator: torch.Generator,
    ) -> Tensor:
        """Indices of the chosen cells of one pair."""
        if self.mode == "threshold":
            return torch.nonzero((score >= self.threshold) & (score > 0))[:, 0]
        if self.mode == "topk":
            candidates = torch.nonzero((score >= self.threshold) & (score > 0))[:, 0]
            order = torch.argsort(score[candidates], descending=True, stable=True)
            return candidates[order[: self.num_matches]]
        weight = torch.where(score > self.threshold, torch.ones_like(score), score).cpu().double()
        available = int((weight > 0).sum())
        if available == 0:
            return torch.zeros(0, dtype=torch.long, device=score.device)
        drawn = torch.multinomial(weight, min(4 * self.num_matches, available), replacement=False, generator=generator)
        drawn = drawn.to(score.device)
        normalised = torch.cat([normalise(points0[drawn], frame), normalise(points1[drawn], image1_size)], dim=-1)
        density = kde_density(normalised, self.kde_std)
        p = 1.0 / (density + 1.0)
        p[density < self.min_density] = 1e-7
        keep = torch.multinomial(
            p.cpu().double(), min(self.num_matches, len(drawn)), replacement=False, generator=generator
        )
        return drawn[keep.to(score.device)]

    def spec(self) -> dict:
        return {"from": "dense warp + certainty (corrlab.dense_sampling.DenseSampler)", **asdict(self)}


def normalise(points: Tensor, size: tuple[int, int]) -> Tensor:
    """Pixels (centres at integers) -> [-1, 1] over an image of `size` (H, W)."""
    h, w = size
    return torch.stack([(points[:, 0] + 0.5) / w * 2 - 1, (points[:, 1] + 0.5) / h * 2 - 1], dim=-1)


def kde_density(points: Tensor, std: float, chunk: int = 2048) -> Tensor:
    """sum_j exp(-|x_i - x_j|^2 / (2 std^2)) for every point (N, D), in row chunks to bound memory."""
    out = torch.empty(len(points), dtype=points.dtype, device=points.device)
    for start in range(0, len(points), chunk):
        d2 = torch.cdist(points[start : start + chunk], points) ** 2
        out[start : start + chunk] = torch.exp(-d2 / (2 * std**2)).sum(-1)
    return out
