"""DeepMatching pyramid ops: the PyTorch reference against hand-computed cases, and every compiled
backend against the reference (bit-equal values, gradients) on random inputs with odd sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from corrlab.ops import pyramid
from corrlab.ops import pyramid_reference as reference
from corrlab.ops.extension import load_extension

BACKENDS = [
    pytest.param("cpp", torch.device("cpu"), id="cpp"),
    pytest.param(
        "cuda",
        torch.device("cuda"),
        id="cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


def compiled(backend: str):
    return load_extension(f"corrlab_pyramid_{backend}", pyramid.SOURCES[backend], cuda=backend == "cuda")


# --- the reference itself -----------------------------------------------------------------


def test_level_one_parent_averages_its_four_shifted_children():
    # 2x2 cells of image 1, 6x6 maps: the centre parent (1, 1) of the 3x3 parent grid has all 4 children
    lower = torch.rand(1, 2, 2, 6, 6)
    upper, weights = pyramid.pyramid_level(lower, level=1, border_norm=1.0, eps=0.0)
    pooled = F.max_pool2d(lower.view(4, 6, 6), 3, 2, 1)  # (4, 3, 3)
    # pixel (1, 1) of the parent: TL child at (0, 0), TR at (0, 2), BL at (2, 0), BR at (2, 2)
    expected = (pooled[0, 0, 0] + pooled[1, 0, 2] + pooled[2, 2, 0] + pooled[3, 2, 2]) / 4
    assert upper[0, 1, 1, 1, 1] == pytest.approx(float(expected))
    # on the first map row only the two bottom children exist: full normalisation divides by 2
    expected_top = (pooled[2, 1, 0] + pooled[3, 1, 2]) / 2
    assert upper[0, 1, 1, 0, 1] == pytest.approx(float(expected_top))
    assert weights.tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]


def test_border_normalisation_interpolates_between_none_and_full():
    lower = torch.rand(1, 2, 2, 6, 6)
    none, _ = pyramid.pyramid_level(lower, level=1, border_norm=0.0, eps=0.0)
    full, _ = pyramid.pyramid_level(lower, level=1, border_norm=1.0, eps=0.0)
    half, _ = pyramid.pyramid_level(lower, level=1, border_norm=0.5, eps=0.0)
    # centre parent, first row: 2 of 4 children present -> divide by 4 (none), 2 (full), sqrt(8) (half)
    raw = none[0, 1, 1, 0, 1] * 4
    assert full[0, 1, 1, 0, 1] == pytest.approx(float(raw / 2))
    assert half[0, 1, 1, 0, 1] == pytest.approx(float(raw / 8**0.5))


def test_level_two_children_are_one_cell_apart_on_the_same_grid():
    lower = torch.zeros(1, 3, 3, 8, 8)
    lower[0, 0, 0] = 1.0  # only the top-left cell matches anything
    upper, weights = pyramid.pyramid_level(lower, level=2, border_norm=1.0)
    assert upper.shape == (1, 3, 3, 4, 4)
    assert upper[0, 1, 1].max() > 0  # (0, 0) is the TL child of parent (1, 1)
    assert upper[0, 0, 0].max() == 0 and upper[0, 2, 2].max() == 0
    assert weights[1, 1] == pytest.approx(4) and weights[0, 0] == pytest.approx(1)


def test_backtrack_adds_parent_score_at_window_argmax_only():
    # one cell, level 1: its parents are the 4 cells of a 2x2 parent grid
    lower = torch.zeros(1, 1, 1, 6, 6)
    lower[0, 0, 0, 2, 3] = 0.5  # argmax of the window centred on pooled pixel (1, 1) (rows 1-3, cols 1-3)
    upper = torch.zeros(1, 2, 2, 3, 3)
    # this cell is the BR child of parent (0, 0): back[q] = upper[q - 1], so q = (1, 1) reads upper (0, 0)
    upper[0, 0, 0, 0, 0] = 2.0
    out = pyramid.backtrack_(upper, lower.clone(), level=1)
    expected = lower.clone()
    expected[0, 0, 0, 2, 3] += 2.0
    assert torch.equal(out, expected)


def test_block_max_breaks_ties_towards_the_first_map():
    volume = torch.zeros(3, 4, 8)
    volume[1, 1, 5] = 2.0
    volume[2, 1, 5] = 2.0
    values, indices = pyramid.block_max(volume, 4)
    assert values.tolist() == [[0.0, 2.0]]
    assert indices[0, 1] == 1 * 32 + 1 * 8 + 5
    assert indices[0, 0] == 0  # all equal: the first element of the first map


def test_merge_takes_the_best_scoring_nearby_correspondence():
    accu = torch.zeros(2, 2, 6)
    corres = torch.zeros(2, 2, 6)
    # cell (0, 0) -> a correspondence at (1, 1) with score 3, cell (0, 1) at (2, 1) with score 5
    corres[0, 0] = torch.tensor([1.0, 1.0, 10.0, 10.0, 3.0, 0.0])
    corres[0, 1] = torch.tensor([2.0, 1.0, 11.0, 10.0, 5.0, 0.0])
    identity = torch.eye(3)
    reference.merge_corres_reference(accu, corres, 0, identity[:2], max_dist=8.0, step=2)
    # bin (0, 0) at (1, 1): nearest at distance 0 -> only that one (others > 2x0) -> score 3
    assert accu[0, 0].tolist() == [1.0, 1.0, 10.0, 10.0, 3.0, 0.0]
    # bin (0, 1) at (3, 1): distances 2 and 1 -> both within 2x the nearest (squared 4 <= 4*1) -> score 5
    assert accu[0, 1, 4] == 5.0


# --- compiled backends against the reference ------------------------------------------------


def random_volume(shape, device, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator).to(device)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 3, 5, 9, 7), (1, 5, 4, 10, 13)])
def test_aggregate_matches_reference(backend, device, level, shape):
    module = compiled(backend)
    pooled = random_volume(shape, device, seed=level)
    b, h1, w1, ph, pw = shape
    weights = random_volume((h1, w1), device, seed=7) + 0.5
    uh1, uw1 = reference.parent_grid(level, h1, w1)
    for w in (None, weights):
        start = random_volume((b, uh1, uw1, ph, pw), device, seed=9)
        expected = reference.aggregate_reference(start.clone(), pooled, level, w)
        module.aggregate_(start, pooled, w, level, 0)
        assert torch.equal(start, expected)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("level", [1, 2])
def test_aggregate_by_row_chunks_equals_whole(backend, device, level):
    module = compiled(backend)
    pooled = random_volume((1, 7, 5, 6, 9), device, seed=3)
    uh1, uw1 = reference.parent_grid(level, 7, 5)
    whole = reference.aggregate_reference(torch.zeros(1, uh1, uw1, 6, 9, device=device), pooled, level)
    chunked = torch.zeros_like(whole)
    for first in range(0, 7, 3):
        module.aggregate_(chunked, pooled[:, first : first + 3].contiguous(), None, level, first)
    assert torch.equal(chunked, whole)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("level", [1, 2, 3])
def test_aggregate_gradient_matches_reference(backend, device, level):
    module = compiled(backend)
    grad_upper = random_volume((2,) + reference.parent_grid(level, 5, 3) + (6, 7), device, seed=11)
    weights = random_volume((5, 3), device, seed=12)
    for w in (None, weights):
        expected = reference.aggregate_transpose_reference(grad_upper, level, w)
        assert torch.equal(module.aggregate_transpose(grad_upper, w, level), expected)


def test_aggregate_transpose_is_the_adjoint():
    pooled = torch.rand(2, 4, 3, 5, 6, dtype=torch.float64)
    weights = torch.rand(4, 3, dtype=torch.float64)
    for level in (1, 2):
        uh1, uw1 = reference.parent_grid(level, 4, 3)
        g = torch.rand(2, uh1, uw1, 5, 6, dtype=torch.float64)
        forward = reference.aggregate_reference(torch.zeros_like(g), pooled, level, weights)
        adjoint = reference.aggregate_transpose_reference(g, level, weights)
        assert (forward * g).sum() == pytest.approx(float((pooled * adjoint).sum()))


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_pyramid_level_values_and_gradients_match_reference(backend, device, monkeypatch):
    lower = (random_volume((2, 5, 3, 11, 9), device, seed=5) * 2 - 1).double()
    weights = random_volume((5, 3), device, seed=6).double() + 1
    results = {}
    for choice in ("torch", backend):
        monkeypatch.setenv("CORRLAB_OPS", choice)
        x = lower.clone().requires_grad_(True)
        upper, new_weights = pyramid.pyramid_level(x, level=2, weights=weights, power=1.5, eps=1e-7)
        (upper * torch.linspace(0, 1, upper.numel(), device=device, dtype=upper.dtype).view_as(upper)).sum().backward()
        results[choice] = (upper.detach(), new_weights, x.grad)
    for ours, ref in zip(results[backend], results["torch"]):
        assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_pyramid_level_gradient_is_correct():
    lower = (torch.rand(1, 3, 2, 7, 5, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: pyramid.pyramid_level(x, level=1, power=1.5)[0], (lower,))


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("maps", [(9, 7), (12, 10), (2, 3), (5, 19), (6, 37), (7, 40)])  # wide: the 8-lane windows too
def test_backtrack_matches_reference(backend, device, level, maps):
    module = compiled(backend)
    h2, w2 = maps
    ph, pw = 1 + (h2 - 1) // 2, 1 + (w2 - 1) // 2
    lower = random_volume((1, 5, 4, h2, w2), device, seed=level)
    upper = random_volume((1,) + reference.parent_grid(level, 5, 4) + (ph, pw), device, seed=level + 10)
    expected = reference.backtrack_reference(upper, lower.clone(), level)
    ours = lower.clone()
    module.backtrack_(upper, ours, level, 0)
    assert torch.equal(ours, expected)
    chunked = lower.clone()
    for first in range(0, 5, 2):
        part = chunked[:, first : first + 2].contiguous()
        module.backtrack_(upper, part, level, first)
        chunked[:, first : first + 2] = part
    assert torch.equal(chunked, expected)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("width", [11, 41])  # 41: windows of 8 pooled cells at a time and a scalar tail
def test_backtrack_with_ties_matches_reference(backend, device, width):
    module = compiled(backend)
    lower = (random_volume((1, 3, 3, 9, width), device, seed=1) * 4).round() / 4  # many equal values
    upper = random_volume((1, 4, 4, 5, 1 + (width - 1) // 2), device, seed=2)
    expected = reference.backtrack_reference(upper, lower.clone(), 1)
    module.backtrack_(upper, lower, 1, 0)
    assert torch.equal(lower, expected)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("shape", [(7, 13, 17), (1, 8, 8), (30, 9, 12)])
def test_block_max_matches_reference(backend, device, shape):
    module = compiled(backend)
    volume = (random_volume(shape, device, seed=4) * 8).round()  # ties
    values, indices = module.block_max(volume, 4)
    ref_values, ref_indices = reference.block_max_reference(volume, 4)
    assert torch.equal(values, ref_values) and torch.equal(indices, ref_indices)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_merge_matches_reference(backend, device):
    module = compiled(backend)
    generator = torch.Generator().manual_seed(0)
    ih, iw = 7, 9
    grid = torch.stack(torch.meshgrid(torch.arange(ih) * 4.0 + 2, torch.arange(iw) * 4.0 + 2, indexing="ij")[::-1], -1)
    trf = torch.tensor([[1.4, 0.3, 2.0], [-0.3, 1.4, -1.0], [0.0, 0.0, 1.0]])  # scaled+rotated -> reference
    pos = grid @ trf[:2, :2].T + trf[:2, 2] + torch.randn(ih, iw, 2, generator=generator)
    corres = torch.cat(
        [
            pos,
            torch.rand(ih, iw, 2, generator=generator) * 50,
            torch.rand(ih, iw, 1, generator=generator),
            torch.full((ih, iw, 1), 3.0),
        ],
        -1,
    )
    inv = torch.linalg.inv(trf)
    accu = torch.zeros(20, 24, 6)
    accu[..., 4] = torch.rand(20, 24, generator=generator) * 0.5
    expected = reference.merge_corres_reference(accu.clone(), corres, 0, inv[:2], 8 * 1.4, 2)
    ours = accu.clone().to(device)
    module.merge_corres_(ours, corres.to(device), 0, inv[:2].contiguous().to(device), 8 * 1.4, 2)
    assert torch.equal(ours.cpu(), expected)
    assert (expected[..., 4] != accu[..., 4]).sum() > 50  # the merge did something


def test_dispatch_falls_back_to_torch_when_forced(monkeypatch):
    monkeypatch.setenv("CORRLAB_OPS", "torch")
    assert pyramid.backend_module(torch.device("cpu")) is None
