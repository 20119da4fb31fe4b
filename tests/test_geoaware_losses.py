"""GeoAware-SC losses against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from corrlab.losses.geoaware import GeoAwareLoss, clip_loss, self_contrastive_loss

GRID, SIZE = 4, 56  # stride 14


def one_hot_desc(targets: dict[int, int], dim: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Descriptors (16, dim): target cell j is e_j; source cell i is e_{targets[i]} (else a distinct e_{16+i})."""
    d1 = torch.eye(dim)[:16]
    d0 = torch.stack([torch.eye(dim)[targets.get(i, 16 + i)] for i in range(16)])
    return d0, d1


def test_clip_loss_by_hand():
    z = torch.eye(2)
    s = torch.tensor(3.0)
    # logits = s * I: each row's cross-entropy is log(1 + e^-s), both directions
    torch.testing.assert_close(clip_loss(z, z, s), torch.tensor(math.log(1 + math.exp(-3.0))))
    z1 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # swapped: -log(1 / (1 + e^s))
    torch.testing.assert_close(clip_loss(z, z1, s), torch.tensor(math.log(1 + math.exp(3.0))))
    # asymmetric logits s * [[1, 1], [0, 0]]: its rows give log 2 each, its columns [s, 0] (label 0) log(1 + e^-s)
    # and [s, 0] (label 1) log(1 + e^s); the loss is the mean of both directions, as the reference's
    z1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    columns = (math.log(1 + math.exp(-3.0)) + math.log(1 + math.exp(3.0))) / 2
    torch.testing.assert_close(clip_loss(z, z1, s), torch.tensor((math.log(2) + columns) / 2))


def test_dense_flow_loss_by_hand():
    loss = GeoAwareLoss(grid=GRID, image_size=SIZE, gaussian_augment=0.0)
    k0 = torch.tensor([[21.0, 7.0]])  # p0 = (1.5, 0.5), cell (1, 0) = index 1
    k1 = torch.tensor([[35.0, 49.0]])  # p1 = (2.5, 3.5)
    d0, d1 = one_hot_desc({1: 3 * 4 + 2})  # source cell 1 -> target cell (2, 3)
    # soft-argmax with beta 0.02 of a one-hot row: (2, 3); flow (1, 3) = p1 - p0
    torch.testing.assert_close(loss.flow_loss(d0, d1, k0, k1, 10.0), torch.tensor(0.0), atol=1e-6, rtol=0)
    d0, d1 = one_hot_desc({1: 3 * 4 + 3})  # -> (3, 3): flow (2, 3), error 1 patch
    torch.testing.assert_close(loss.flow_loss(d0, d1, k0, k1, 10.0), torch.tensor(1.0), atol=1e-6, rtol=0)


def test_dense_target_jitter_has_std_of_a_tenth_of_the_threshold_over_two():
    loss = GeoAwareLoss(grid=GRID, image_size=SIZE, gaussian_augment=0.1)
    d0, d1 = one_hot_desc({1: 3 * 4 + 2})
    k0, k1 = torch.tensor([[21.0, 7.0]]), torch.tensor([[35.0, 49.0]])
    torch.manual_seed(0)
    value = loss.flow_loss(d0, d1, k0, k1, 8.0)
    torch.manual_seed(0)
    noise = torch.randn(1, 2) * (0.1 * 8.0 / 2)
    torch.testing.assert_close(value, noise.norm(dim=-1).mean(), atol=1e-6, rtol=0)


def test_pair_augmentation_is_the_weighted_mean_of_dense_terms():
    loss = GeoAwareLoss(grid=GRID, image_size=SIZE, gaussian_augment=0.0)
    torch.manual_seed(0)
    desc = [F.normalize(torch.randn(16, 8), dim=1) for _ in range(2)]
    desc_flip = [F.normalize(torch.randn(16, 8), dim=1) for _ in range(2)]
    kpts = [
        torch.tensor([[10.0, 20.0], [40.0, 22.0], [30.0, 50.0]]),
        torch.tensor([[12.0, 5.0], [44.0, 8.0], [20.0, 30.0]]),
    ]
    valid = torch.tensor([True, True, False])
    out = loss(desc, kpts, valid, (3.0, 4.0), torch.tensor(1 / 0.07), desc_flip, groups=((0, 1),))
    # mirrored keypoints x -> 56 - x, slots 0 and 1 exchanged (slot 2 is not valid)
    f0 = torch.tensor([[16.0, 22.0], [46.0, 20.0]])
    f1 = torch.tensor([[12.0, 8.0], [44.0, 5.0]])
    double = loss.flow_loss(desc_flip[0], desc_flip[1], f0, f1, 4.0)
    self_flip = loss.flow_loss(desc_flip[0], desc[0], f0, kpts[0][:2], 3.0)
    torch.testing.assert_close(out["double_flip"], double)
    torch.testing.assert_close(out["self_flip"], self_flip)
    pair = out["clip"] + out["dense"]
    torch.testing.assert_close(out["total"], (pair + 1.0 * double + 0.25 * self_flip) / 2.25)


def test_sparse_only_objective_uses_clip_for_the_augmented_pairs():
    loss = GeoAwareLoss(grid=GRID, image_size=SIZE, dense=False, self_flip=0.0)
    desc = [torch.eye(16), torch.eye(16)]
    kpts = [torch.tensor([[7.0, 7.0], [21.0, 7.0]])] * 2
    out = loss(desc, kpts, torch.tensor([True, True]), (1.0, 1.0), torch.tensor(2.0), desc, groups=())
    assert set(out) == {"clip", "double_flip", "total"}
    # mirrored: x -> 56 - x lands on cells 3 and 2, both sides alike: the same identity logits
    expected = math.log(1 + math.exp(-2.0))
    torch.testing.assert_close(out["clip"], torch.tensor(expected))
    torch.testing.assert_close(out["total"], torch.tensor(expected))
    assert np.isclose(float(out["double_flip"]), expected)


def test_self_contrastive_term_by_hand():
    """A checkerboard of +e / -e: axis neighbours have dot -1, diagonal ones +1, a far pair (-1)^(parity)."""
    g = 5
    sign = torch.tensor([[(-1.0) ** (x + y) for x in range(g)] for y in range(g)]).reshape(-1, 1)
    desc = sign * torch.tensor([[1.0, 0.0, 0.0]])  # (y, x) cell = row y * g + x
    torch.manual_seed(0)
    y0, x0, y1, x1 = (torch.randint(0, g, (g * g,)) for _ in range(4))  # the reference's random far pairs
    far = ((y1 - y0).abs() > 1) | ((x1 - x0).abs() > 1)
    far_sum = float(((-1.0) ** (y0 + x0 + y1 + x1)[far]).sum())
    # the wrapped row / column of each shift is zeroed: (g-1)/g of the map (axis), ((g-1)/g)^2 (diagonal)
    local = -(4 * -(g - 1) / g + 4 * ((g - 1) / g) ** 2)
    torch.manual_seed(0)
    assert float(self_contrastive_loss(desc, g)) == pytest.approx(local + 0.1 * far_sum, abs=1e-6)


def test_self_contrast_is_added_to_the_weighted_mean_scaled_by_the_weight_squared():
    args = dict(grid=GRID, image_size=SIZE, gaussian_augment=0.0, double_flip=0.0, self_flip=0.0)
    torch.manual_seed(0)
    desc = [F.normalize(torch.randn(16, 8), dim=1) for _ in range(2)]
    kpts = [torch.tensor([[10.0, 20.0], [40.0, 22.0]]), torch.tensor([[12.0, 5.0], [44.0, 8.0]])]
    inputs = (desc, kpts, torch.tensor([True, True]), (3.0, 4.0), torch.tensor(1 / 0.07))
    plain = GeoAwareLoss(**args)(*inputs)
    torch.manual_seed(1)
    out = GeoAwareLoss(**args, self_contrast_weight=0.5)(*inputs)
    torch.manual_seed(1)
    expected = (self_contrastive_loss(desc[0], GRID) + self_contrastive_loss(desc[1], GRID)) / 2 * 0.25
    torch.testing.assert_close(out["self_contrast"], expected)
    torch.testing.assert_close(out["total"], plain["total"] + expected)
    assert "self_contrast" not in plain


def test_self_flip_uses_source_keypoints_invisible_in_the_target():
    """As the reference (vis_self_flip = source-visible after and before the flip): slot 1 is visible in the source
    only, and with the left/right pair (0, 1) the self flip would have no keypoint from the mutual ones alone."""
    loss = GeoAwareLoss(grid=GRID, image_size=SIZE, gaussian_augment=0.0)
    own = torch.tensor([[7.0, 21.0], [49.0, 35.0]])  # cells (0, 1) and (3, 2)
    kpts = [torch.tensor([[7.0, 21.0], [0.0, 0.0]]), torch.tensor([[30.0, 30.0], [0.0, 0.0]])]
    valid = torch.tensor([True, False])
    # mirrored source, slots exchanged: slot 0 = (56 - 49, 35) in cell (0, 2) = 8, slot 1 = (49, 21) in cell (3, 1) = 7;
    # their targets in the source are p = (0.5, 1.5) and (3.5, 2.5): flows (0, -1) and (0, 1) from the floored cells
    flip0, desc0 = one_hot_desc({8: 1 * 4 + 0, 7: 2 * 4 + 2})  # 8 -> (0, 1): exact; 7 -> (2, 2): 1 patch off
    torch.manual_seed(0)
    other = [F.normalize(torch.randn(16, 32), dim=1) for _ in range(2)]
    out = loss(
        [desc0, other[0]],
        kpts,
        valid,
        (3.0, 4.0),
        torch.tensor(2.0),
        [flip0, other[1]],
        ((0, 1),),
        source=(own, torch.tensor([True, True])),
    )
    torch.testing.assert_close(out["self_flip"], torch.tensor(0.5), atol=1e-5, rtol=0)
    assert "self_flip" not in loss(
        [desc0, other[0]], kpts, valid, (3.0, 4.0), torch.tensor(2.0), [flip0, other[1]], ((0, 1),)
    )  # the pair's mutual keypoints only (no source given)
