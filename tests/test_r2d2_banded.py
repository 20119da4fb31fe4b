"""The row-band trunk (corrlab.models.r2d2.banded) and the banded student pyramid against the whole-image forward
pass, bit for bit, on random networks (the released widths) and tiny images whose receptive field spans several
bands."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from corrlab.models.gcm.student import banded_student_pyramid, student_pyramid, student_quad_l2net_confcfs
from corrlab.models.r2d2.banded import band_starts, banded_features, batch_norm_, conv_blocks
from corrlab.models.r2d2.patchnet import fast_quad_l2net_confcfs, quad_l2net_confcfs


def randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BN statistics (far from identity, so a wrong BN or a wrong row shows)."""
    torch.manual_seed(seed)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.2, 3.0)
    return net.eval()


def test_batch_norm_in_place_equals_pytorch_bitwise():
    bn = randomised(nn.BatchNorm2d(16, affine=False))
    x = torch.randn(1, 16, 9, 11) * 4
    expected = bn(x)
    out = batch_norm_(x.clone(), bn)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("rows", [16, 32, 48])
def test_banded_student_trunk_equals_the_whole_image_pass(rows):
    net = randomised(student_quad_l2net_confcfs())  # reach 18 rows each side: > one 16-row band
    x = torch.randn(1, 3, 80, 24)
    with torch.no_grad():
        expected = net.features(x)
    out = banded_features(net.ops, x, rows=rows)
    assert out.shape == expected.shape and torch.equal(out, expected)


def test_banded_teacher_trunk_equals_the_whole_image_pass():
    net = randomised(quad_l2net_confcfs(), seed=1)
    x = torch.randn(1, 3, 53, 20)  # height not a multiple of the band: a short last band
    with torch.no_grad():
        expected = net.features(x)
    assert torch.equal(banded_features(net.ops, x, rows=16), expected)


def test_band_starts_cover_the_rows_and_never_end_on_a_short_band():
    assert band_starts(53, 16) == [(0, 16), (16, 32), (32, 53)]
    assert band_starts(56, 16) == [(0, 16), (16, 32), (32, 48), (48, 56)]
    assert band_starts(10, 16) == [(0, 10)]


def test_banded_student_pyramid_equals_the_whole_image_pyramid():
    net = randomised(student_quad_l2net_confcfs(), seed=2)
    x = torch.randn(1, 3, 96, 48)
    with torch.no_grad():
        expected = student_pyramid(net.features(x))
    levels = banded_student_pyramid(net, x, rows=32)
    assert len(levels) == 6 and levels[-1] is levels[-2]
    assert all(torch.equal(a, b) for a, b in zip(levels, expected))
    coarse = banded_student_pyramid(net, x, first_level=4, rows=32)
    assert coarse[:4] == [None] * 4 and torch.equal(coarse[-1], expected[-1])


def test_banded_trunk_refuses_what_it_cannot_band():
    with pytest.raises(ValueError, match="unsupported layer MaxPool2d"):
        conv_blocks(fast_quad_l2net_confcfs().eval().ops)
    with pytest.raises(ValueError, match="eval-mode BatchNorm2d"):
        conv_blocks(student_quad_l2net_confcfs().ops)  # training mode
    with pytest.raises(ValueError, match="multiples of 16"):
        conv_blocks(randomised(student_quad_l2net_confcfs(dim=16, mchan=1)).ops)  # 8-channel convolutions
