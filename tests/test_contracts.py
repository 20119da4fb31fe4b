"""Matches, collate, resize policy and the MatchingModule's generic transfer()."""

from __future__ import annotations

import pytest
import torch

from corrlab.datamodules.collate import collate_pairs
from corrlab.datamodules.resize import ResizePolicy
from corrlab.matches import Matches
from corrlab.modules.base import MatchingModule, sample_warp


def test_matches_validate_shapes_and_split_by_pair():
    m = Matches(torch.rand(5, 2), torch.rand(5, 2), torch.rand(5), torch.tensor([0, 1, 1, 0, 1]))
    assert len(m.pair(1)) == 3 and m.pair(1).batch_idx.tolist() == [1, 1, 1]
    assert len(Matches.concat([m.pair(0), m.pair(1)])) == 5
    with pytest.raises(ValueError, match="kpts0/kpts1"):
        Matches(torch.rand(5, 3), torch.rand(5, 2), torch.rand(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="scores"):
        Matches(torch.rand(5, 2), torch.rand(5, 2), torch.rand(4), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="warp"):
        Matches(
            torch.rand(0, 2),
            torch.rand(0, 2),
            torch.rand(0),
            torch.zeros(0, dtype=torch.long),
            warp=torch.rand(1, 4, 4),
        )


def test_collate_stacks_tensors_and_keeps_the_rest_as_lists():
    samples = [
        {"image0": torch.zeros(3, 4, 5), "name": "a", "depth0": None, "kpts": torch.zeros(2, 2), "n": 3},
        {"image0": torch.ones(3, 4, 5), "name": "b", "depth0": None, "kpts": torch.zeros(4, 2), "n": 5},
    ]
    batch = collate_pairs(samples)
    assert batch["image0"].shape == (2, 3, 4, 5)
    assert batch["name"] == ["a", "b"] and batch["depth0"] == [None, None]
    assert isinstance(batch["kpts"], list) and batch["kpts"][1].shape == (4, 2)
    assert batch["n"].tolist() == [3, 5]
    with pytest.raises(KeyError, match="sample 1"):
        collate_pairs([{"a": 1}, {"b": 2}])


@pytest.mark.parametrize(
    "policy,expected",
    [
        (ResizePolicy(), (480, 640)),
        (ResizePolicy("long", 320), (240, 320)),
        (ResizePolicy("short", 120), (120, 160)),
        (ResizePolicy("fixed", [100, 200]), (100, 200)),
        (ResizePolicy("long", 1024, divisible_by=16), (768, 1024)),
        (ResizePolicy("long", 500, divisible_by=16), (368, 496)),
    ],
)
def test_resize_policy_sizes(policy, expected):
    assert policy.output_size(480, 640) == expected


def test_resize_returns_image_and_scale():
    image = torch.rand(3, 48, 64)
    resized, scale = ResizePolicy("long", 32)(image)
    assert resized.shape == (3, 24, 32) and scale.tolist() == [0.5, 0.5]
    same, unit = ResizePolicy()(image)
    assert same is image and unit.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="resize.mode"):
        ResizePolicy("longest", 10)
    with pytest.raises(ValueError, match="needs resize.size"):
        ResizePolicy("short")


class FixedMatcher(MatchingModule):
    """Returns preset matches (and optionally a warp) whatever the batch."""

    def __init__(self, matches: Matches) -> None:
        super().__init__()
        self.fixed = matches

    def match(self, batch: dict) -> Matches:
        return self.fixed


def test_sparse_transfer_uses_the_nearest_match_displacement():
    matches = Matches(
        kpts0=torch.tensor([[10.0, 10.0], [50.0, 50.0], [5.0, 5.0]]),
        kpts1=torch.tensor([[12.0, 13.0], [40.0, 45.0], [0.0, 0.0]]),
        scores=torch.ones(3),
        batch_idx=torch.tensor([0, 0, 1]),
    )
    batch = {"image0": torch.zeros(3, 3, 8, 8)}
    query = torch.tensor([[[11.0, 9.0], [48.0, 52.0]], [[0.0, 0.0], [9.0, 9.0]], [[1.0, 1.0], [2.0, 2.0]]])
    out = FixedMatcher(matches).transfer(batch, query)
    assert out[0].tolist() == [[13.0, 12.0], [38.0, 47.0]]
    assert out[1].tolist() == [[-5.0, -5.0], [4.0, 4.0]]
    assert torch.isnan(out[2]).all()  # pair 2 has no match


def test_dense_transfer_reads_the_warp_bilinearly():
    h, w = 6, 8
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    warp = torch.stack([2 * xs + 1, ys - 3], -1)[None]  # an affine warp, exact under bilinear interpolation
    query = torch.tensor([[[2.5, 1.25], [0.0, 5.0], [7.0, 3.5]]])
    expected = torch.stack([2 * query[..., 0] + 1, query[..., 1] - 3], -1)
    assert torch.allclose(sample_warp(warp, query), expected, atol=1e-5)
    matches = Matches(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, dtype=torch.long), warp=warp)
    assert torch.allclose(
        FixedMatcher(matches).transfer({"image0": torch.zeros(1, 3, h, w)}, query), expected, atol=1e-5
    )
