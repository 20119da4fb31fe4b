"""PUMP's losses: the AP quantiser against R2D2's formula, hand-checkable AP cases, the pixel AP
loss on perfect / random descriptors, the DeepMatching loss on random / identical / shifted pairs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from corrlab.losses.ap_loss import APLoss
from corrlab.losses.deepmatching import DeepMatchingLoss
from corrlab.losses.pixel_ap import NeighbourSampler, PixelAPLoss, ring_offsets


def r2d2_quantised_ap(x: torch.Tensor, label: torch.Tensor, nq: int = 20) -> torch.Tensor:
    """R2D2 / PUMP APLoss written out: 2 * nq lines of slope -+(nq - 1), min of pairs, clamp at 0."""
    a = nq - 1
    first = -a * x[:, None] + torch.arange(nq, 0, -1, dtype=x.dtype)[None, :, None]
    second = a * x[:, None] + torch.arange(2 - nq, 2, dtype=x.dtype)[None, :, None]
    first[:, 0] = 1
    second[:, -1] = 1
    q = torch.min(first, second).clamp(min=0)  # N x Q x M
    nbs = q.sum(-1)
    rec = (q * label[:, None].to(x.dtype)).sum(-1)
    prec = rec.cumsum(-1) / (1e-16 + nbs.cumsum(-1))
    rec = rec / rec.sum(-1, keepdim=True)
    return (prec * rec).sum(-1)


def test_ap_matches_the_quantiser_formula_values_and_gradients():
    generator = torch.Generator().manual_seed(0)
    scores = (torch.rand(6, 40, generator=generator, dtype=torch.float64) * 1.4 - 0.2).requires_grad_(True)
    labels = torch.rand(6, 40, generator=generator) < 0.3
    labels[:, 0] = True
    ours = APLoss(20)(scores, labels)
    ours.sum().backward()
    ours_grad = scores.grad.clone()
    scores.grad = None
    expected = r2d2_quantised_ap(scores, labels)
    expected.sum().backward()
    assert torch.allclose(ours, expected, atol=1e-12)
    assert torch.allclose(ours_grad, scores.grad, atol=1e-10)


def test_ap_hand_cases():
    ap = APLoss(20)
    perfect = ap(torch.tensor([[1.0, 0.9, 0.1, 0.0]]), torch.tensor([[True, True, False, False]]))
    assert perfect.item() == pytest.approx(1.0)
    # one positive below both negatives, in well separated bins: precision at its bin = 1/3
    worst = ap(torch.tensor([[0.0, 1.0, 0.5]]), torch.tensor([[True, False, False]]))
    assert worst.item() == pytest.approx(1 / 3)


def test_sampler_offsets_are_the_reference_radii():
    sampler = NeighbourSampler()
    assert len(sampler.pos_offsets) == 13  # i^2 + j^2 <= 4
    assert len(sampler.neg_offsets) == 104  # 16 <= i^2 + j^2 <= 49
    assert len(ring_offsets(0, 1)) == 5


def unique_codes(batch: int, height: int, width: int, dim: int = 64, seed: int = 0) -> torch.Tensor:
    """A random unit descriptor per pixel: perfectly discriminative."""
    return F.normalize(torch.randn(batch, dim, height, width, generator=torch.Generator().manual_seed(seed)), dim=1)


def shift(desc: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    return torch.roll(desc, shifts=(dy, dx), dims=(2, 3))


def translation(dx: float, dy: float) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def smooth_codes(batch: int, height: int, width: int, frequencies: int = 64, seed: int = 0) -> torch.Tensor:
    """cos / sin of random plane waves of wavelength 4 pi px: the similarity of two pixels is about
    J0(|d| / 2), decreasing over 0..7 px (1 at 0, 0.77 at 2 px, 0.22 at 4 px), ~0 far away."""
    generator = torch.Generator().manual_seed(seed)
    angle = torch.rand(frequencies, generator=generator) * 2 * torch.pi
    omega = 0.5 * torch.stack([angle.cos(), angle.sin()], 1)
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    phase = (
        omega[:, 0, None, None] * xs
        + omega[:, 1, None, None] * ys
        + torch.rand(frequencies, 1, 1, generator=generator) * 6.28
    )
    codes = torch.cat([phase.cos(), phase.sin()]) / frequencies**0.5
    return codes.expand(batch, -1, -1, -1).contiguous()


def test_pixel_ap_loss_is_zero_for_perfect_descriptors_and_high_for_random_ones():
    torch.manual_seed(0)
    desc0 = smooth_codes(2, 64, 80)
    desc1 = shift(desc0, 3, -2)  # image 1 = image 0 moved by (+3, -2)
    H = translation(3, -2).expand(2, 3, 3)
    loss = PixelAPLoss()
    perfect = loss(desc0, desc1, H)
    assert perfect.item() < 0.02
    random = loss(desc0, unique_codes(2, 64, 80, dim=128, seed=1), H)
    assert random.item() > 0.8


def test_pixel_ap_loss_gradient_reaches_both_descriptor_maps():
    torch.manual_seed(0)
    desc0 = unique_codes(1, 48, 48).requires_grad_(True)
    desc1 = F.normalize(shift(desc0.detach(), 1, 1) + 0.5 * unique_codes(1, 48, 48, seed=2), dim=1).requires_grad_(True)
    PixelAPLoss(chunk=100)(desc0, desc1, translation(1, 1)[None]).backward()
    assert desc0.grad.abs().sum() > 0 and desc1.grad.abs().sum() > 0


def test_deepmatching_loss_random_vs_identical_vs_shifted():
    loss = DeepMatchingLoss()
    desc0 = unique_codes(2, 96, 96, dim=128)
    random = loss(desc0, unique_codes(2, 96, 96, dim=128, seed=3))
    identical = loss(desc0, desc0)
    shifted = loss(desc0, shift(desc0, 6, 4))
    assert -0.05 < random.item() <= 0
    assert identical.item() < -0.3
    assert shifted.item() < -0.2  # still peaked: the pyramid follows the translation
    assert identical.item() >= -1.0


def test_deepmatching_loss_gradient_sharpens_matches():
    desc0 = unique_codes(1, 80, 80, dim=32)
    noisy = F.normalize(desc0 + 0.8 * unique_codes(1, 80, 80, dim=32, seed=5), dim=1).requires_grad_(True)
    loss = DeepMatchingLoss()(desc0, noisy)
    loss.backward()
    with torch.no_grad():
        stepped = F.normalize(noisy - 50 * noisy.grad, dim=1)  # one gradient step on image 1's descriptors
    assert DeepMatchingLoss()(desc0, stepped).item() < loss.item()
