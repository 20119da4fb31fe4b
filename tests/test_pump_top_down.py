"""The fused C++ level-0 top-down pass (`pyramid.top_down_level0_`) against the composition of the PyTorch
reference ops it replaces (activation, backtrack, per-map max, block max, fold), bit for bit, with ties,
thread splits that cut the chunk anywhere, a chunk that starts mid-grid and running maxima to fold into."""

from __future__ import annotations

import pytest
import torch

from corrlab.ops import pyramid


def quantised(*shape: int, levels: int = 7) -> torch.Tensor:
    """Values in {-2/7, ..., 1}: many exact ties, some negatives for the clamp."""
    return torch.randint(-2, levels + 1, shape).float() / levels


def reference_top_down(volume, level1, power, first_row, values, indices, block, offset):
    """The pre-fusion sequence of PyTorch reference ops (CORRLAB_OPS=torch)."""
    volume.clamp_(min=0).pow_(power)
    if level1 is not None:
        pyramid.reference.backtrack_reference(level1, volume, 1, first_row)
    h2, w2 = volume.shape[-2:]
    scores, pixels = volume.view(-1, h2 * w2).max(dim=1)
    v, i = pyramid.reference.block_max_reference(volume.view(-1, h2, w2), block)
    better = v > values
    return scores, pixels, torch.where(better, v, values), torch.where(better, i + offset, indices)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(
    "maps,power,with_level1",
    [
        ((8, 12), 1.5, True),
        ((11, 14), 2.0, True),
        ((9, 8), 1.5, False),
        ((13, 7), 2.0, False),
        ((6, 40), 1.5, True),  # wide maps: windows of 8 pooled cells at a time, then a scalar tail
        ((7, 43), 2.0, True),
    ],
)
def test_fused_top_down_equals_the_reference_ops(monkeypatch, threads, maps, power, with_level1):
    # power 1.5 on maps of 96 / 72 / 240 pixels (multiples of the vector width: torch's vectorised pow on every
    # element on both sides); power 2 (exact x * x) on odd maps where torch's scalar tail would differ
    monkeypatch.setenv("CORRLAB_OPS", "cpp")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        h1, w1, first_row, rows = 6, 5, 2, 3
        h2, w2 = maps
        volume = quantised(1, rows, w1, h2, w2)
        level1 = quantised(1, h1 + 1, w1 + 1, 1 + (h2 - 1) // 2, 1 + (w2 - 1) // 2) if with_level1 else None
        values = torch.randint(1, 5, (h2 // 4, w2 // 4)).float() / 2  # running maxima of earlier chunks, some tie
        values.view(-1)[0], values.view(-1)[-1] = 0.0, 10.0  # one tile surely taken, one surely kept
        indices = torch.randint(0, 1000, values.shape)
        offset = first_row * w1 * h2 * w2
        expected = reference_top_down(
            volume.clone(), level1, power, first_row, values.clone(), indices.clone(), 4, offset
        )
        fused_volume, fused_values, fused_indices = volume.clone(), values.clone(), indices.clone()
        scores, pixels = pyramid.top_down_level0_(
            fused_volume, level1, power, first_row, fused_values, fused_indices, 4, offset
        )
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(scores, expected[0])
    assert torch.equal(pixels, expected[1])
    assert torch.equal(fused_values, expected[2])
    assert torch.equal(fused_indices, expected[3])
    assert (fused_indices != indices).any() and (fused_indices == indices).any()  # the fold took and kept some


@pytest.mark.parametrize("maps,power", [((16, 15), 1.5), ((9, 13), 2.0)])
def test_pool_then_activate_in_cache_equals_the_reference_ops(monkeypatch, maps, power):
    # pooled maps of 64 pixels for power 1.5 (torch's vectorised pow on every element), odd ones for x * x
    monkeypatch.setenv("CORRLAB_OPS", "cpp")
    volume = torch.randn(1, 3, 4, *maps)
    expected = pyramid.reference.max_pool(volume).clamp(min=0).pow(power)
    assert torch.equal(pyramid.max_pool_activate(volume, power), expected)
    assert torch.equal(pyramid.max_pool(volume), pyramid.reference.max_pool(volume))  # power 0: pooling only
