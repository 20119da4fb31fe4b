"""GLU-Net's multi-scale EPE against hand-computed values: a sum over pixels divided by the batch, the per-image
HW / #valid scaling with a mask, NaN pixels dropped, and the GT resized to each level without rescaling."""

from __future__ import annotations

import math

import pytest
import torch

from corrlab.losses.multiscale_epe import MultiScaleEPE, epe_weighted_sum_normalized


def constant_flow(b: int, h: int, w: int, u: float, v: float) -> torch.Tensor:
    return torch.stack([torch.full((b, h, w), u), torch.full((b, h, w), v)], 1)


def test_weighted_sum_normalized_is_a_pixel_sum_per_image():
    gt, est = constant_flow(2, 6, 8, 3.0, 4.0), torch.zeros(2, 2, 6, 8)
    assert epe_weighted_sum_normalized(est, gt).item() == pytest.approx(5 * 48)  # not the mean 5
    mask = torch.zeros(2, 6, 8, dtype=torch.bool)
    mask[0, :3] = True  # 24 valid pixels in image 0
    mask[1, :, :2] = True  # 12 in image 1
    expected = (5 * 24 * 48 / 24 + 5 * 12 * 48 / 12) / 2
    assert epe_weighted_sum_normalized(est, gt, mask).item() == pytest.approx(expected, rel=1e-5)


def test_nan_pixels_never_count():
    gt, est = constant_flow(1, 4, 4, 3.0, 4.0), torch.zeros(1, 2, 4, 4)
    gt[0, 0, 1, 2] = math.nan
    assert epe_weighted_sum_normalized(est, gt).item() == pytest.approx(5 * 15)
    mask = torch.ones(1, 4, 4, dtype=torch.bool)
    assert epe_weighted_sum_normalized(est, gt, mask).item() == pytest.approx(5 * 15 * 16 / 15, rel=1e-5)


def test_levels_use_the_gt_resized_without_rescaling_and_their_weights():
    loss = MultiScaleEPE((0.32, 0.08))
    gt = constant_flow(1, 16, 16, 3.0, 4.0)
    flows = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 8, 8)]
    out = loss(flows, [gt, gt], [None, None])
    assert out["level0"].item() == pytest.approx(0.32 * 5 * 16)  # the vectors stay (3, 4) at 4 x 4
    assert out["level1"].item() == pytest.approx(0.08 * 5 * 64)
    assert out["total"].item() == pytest.approx(out["level0"].item() + out["level1"].item())
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[:, :8] = True  # top half valid: the resized mask keeps the top half
    masked = loss(flows, [gt, gt], [mask, mask])
    assert masked["level1"].item() == pytest.approx(0.08 * 5 * 32 * 64 / 32, rel=1e-5)
    with pytest.raises(ValueError, match="level weights"):
        loss(flows[:1], [gt], [None])
