"""Matches keep warps / certainties / extras through pair() and concat(); dense warps become sparse matches."""

from __future__ import annotations

import pytest
import torch

from corrlab.dense_sampling import DenseSampler, grid_points
from corrlab.matches import Matches
from corrlab.modules.base import MatchingModule


def dense_pair(b: int, shift: float) -> Matches:
    warp = grid_points((4, 6), (4, 6)).reshape(1, 4, 6, 2) + shift
    certainty = torch.arange(24, dtype=torch.float32).reshape(1, 4, 6) / 23
    return Matches(
        torch.rand(3, 2), torch.rand(3, 2), torch.rand(3), torch.full((3,), b), warp, certainty, {"code": torch.rand(3)}
    )


def test_pair_and_concat_keep_warp_certainty_and_extras():
    parts = [dense_pair(0, 1.0), dense_pair(1, 2.0)]
    both = Matches.concat(parts)
    assert both.warp.shape == (2, 4, 6, 2) and both.certainty.shape == (2, 4, 6) and both.extras["code"].shape == (6,)
    second = both.pair(1)
    assert torch.equal(second.warp, parts[1].warp) and torch.equal(second.certainty, parts[1].certainty)
    assert torch.equal(second.extras["code"], parts[1].extras["code"]) and torch.equal(second.kpts0, parts[1].kpts0)
    with pytest.raises(ValueError, match="warp"):
        Matches.concat(
            [
                parts[0],
                Matches(
                    torch.rand(1, 2),
                    torch.rand(1, 2),
                    torch.rand(1),
                    torch.ones(1).long(),
                    extras={"code": torch.rand(1)},
                ),
            ]
        )
    with pytest.raises(ValueError, match="one entry per match"):
        Matches(
            torch.rand(2, 2), torch.rand(2, 2), torch.rand(2), torch.zeros(2).long(), extras={"code": torch.rand(3)}
        )


class HalfResolutionWarp(MatchingModule):
    """match(): the warp x' = 2x + 1, y' = y of an 8 x 12 image, given on a 4 x 6 grid (with or without its frame)."""

    requires_weights = False

    def __init__(self, say_frame: bool) -> None:
        super().__init__()
        self.say_frame = say_frame

    def match(self, batch: dict) -> Matches:
        cells = grid_points((4, 6), (8, 12)).reshape(1, 4, 6, 2)
        warp = cells * torch.tensor([2.0, 1.0]) + torch.tensor([1.0, 0.0])
        return Matches.dense(warp, warp_frame=(8, 12) if self.say_frame else None)


def test_transfer_samples_a_half_resolution_warp_in_its_frame_or_refuses_it():
    batch = {"image0": torch.zeros(1, 3, 8, 12)}
    queries = torch.tensor([[[3.0, 2.0], [7.5, 4.5]]])  # inside the cell centres' hull: bilinear is exact
    expected = queries * torch.tensor([2.0, 1.0]) + torch.tensor([1.0, 0.0])
    assert torch.allclose(HalfResolutionWarp(True).transfer(batch, queries), expected, atol=1e-5)
    with pytest.raises(ValueError, match="warp_frame"):
        HalfResolutionWarp(False).transfer(batch, queries)


def test_topk_and_threshold_pick_the_most_certain_cells():
    pair = dense_pair(0, 1.0)
    top = DenseSampler(mode="topk", num_matches=3, threshold=0.0)(pair, (4, 6), (5, 7))  # image 1 holds every warp
    assert top.scores.tolist() == pytest.approx([1.0, 22 / 23, 21 / 23])
    assert torch.equal(top.kpts0, torch.tensor([[5.0, 3.0], [4.0, 3.0], [3.0, 3.0]]))
    assert torch.equal(top.kpts1, top.kpts0 + 1.0)  # warp = grid + 1
    assert torch.equal(top.warp, pair.warp) and torch.equal(top.certainty, pair.certainty)  # kept for dense benchmarks
    # certainty >= 0.5: cells 12..23 = rows 2 and 3 (12/23 > 0.5 > 11/23); with a 4 x 6 image 1 the +1 warp puts
    # column 5 and row 3 outside it: row 2, columns 0..4 remain
    above = DenseSampler(mode="threshold", threshold=0.5)(pair, (4, 6), (4, 6))
    assert torch.equal(above.kpts0, torch.tensor([[x, 2.0] for x in range(5)]))


def test_balanced_sampling_is_seeded_and_spreads_matches():
    h, w = 32, 32
    warp = grid_points((h, w), (h, w)).reshape(1, h, w, 2)
    certainty = torch.zeros(1, h, w)
    certainty[0, :, :8] = 1.0  # a dense certain strip
    certainty[0, ::4, 8::4] = 1.0  # sparse certain dots elsewhere
    pair = Matches.dense(warp, certainty)
    sampler = DenseSampler(mode="balanced", num_matches=100, threshold=0.5, kde_std=0.1, min_density=0.0)
    first, again = sampler(pair, (h, w), (h, w)), sampler(pair, (h, w), (h, w))
    assert len(first) == 100 and torch.equal(first.kpts0, again.kpts0) and torch.equal(first.kpts1, first.kpts0)
    # certainty-proportional drawing would put 256 / (256 + 48) = 84 % in the strip; balancing lowers that share
    strip = (first.kpts0[:, 0] < 8).float().mean()
    assert strip < 0.75
