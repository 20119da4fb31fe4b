"""The folded trunk (corrlab.models.r2d2.folded_trunk) against the plain eval-mode forward `R2D2Net.features`:
the full map, its 2 x 2 average pool and single pixels (borders included), streamed in one chunk of rows or several
(odd chunk counts, chunks smaller than a convolution's reach), agree up to float rounding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from corrlab.models.gcm.student import pooled_student_pyramid, student_pyramid, student_quad_l2net_confcfs
from corrlab.models.r2d2.folded_trunk import FoldedTrunk
from corrlab.models.r2d2.patchnet import fast_quad_l2net_confcfs, quad_l2net_confcfs

TOLERANCE = dict(rtol=1e-5, atol=2e-5)  # float32 rounding of sums of ~1e3 terms on values of magnitude ~1-10


def randomised(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and random BatchNorm statistics (the default ones would make BN the identity)."""
    torch.manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.3)
            module.running_var.uniform_(0.3, 3.0)
        elif isinstance(module, torch.nn.Conv2d):
            module.bias.data.normal_(0, 0.1)
    return net.eval()


def dense_raw(trunk: FoldedTrunk, image: torch.Tensor) -> torch.Tensor:
    """The folded convolutions run densely over the whole map, one after the other."""
    x = image
    for conv in trunk.head_convs + trunk.tail_convs:
        x = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation)
        if conv.relu:
            x = x.relu_()
    return x


@pytest.mark.parametrize(
    ("make", "rows"),
    [
        (student_quad_l2net_confcfs, 2),
        (student_quad_l2net_confcfs, 16),
        (quad_l2net_confcfs, 20),
        (student_quad_l2net_confcfs, 256),
    ],
)
def test_folded_trunk_equals_the_plain_forward_densely_pooled_and_at_pixels(make, rows):
    net = randomised(make())
    image = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        expected = net.features(image)
        trunk = FoldedTrunk(net)
        assert len(trunk.tail_convs) == 3 and [c.dilation for c in trunk.tail_convs] == [4, 8, 16]
        torch.testing.assert_close(dense_raw(trunk, image), expected, **TOLERANCE)
        torch.testing.assert_close(trunk.pooled(image, rows=rows), F.avg_pool2d(expected, 2), **TOLERANCE)
        raw = trunk.raw_at_pixels(image, rows=rows)
        # every pixel of the first and last rows / columns, and random interior ones, in two requests
        g = torch.Generator().manual_seed(1)
        edge_x = torch.cat(
            [torch.arange(64), torch.arange(64), torch.zeros(48, dtype=torch.long), torch.full((48,), 63)]
        )
        edge_y = torch.cat(
            [torch.zeros(64, dtype=torch.long), torch.full((64,), 47), torch.arange(48), torch.arange(48)]
        )
        inner_x, inner_y = torch.randint(0, 64, (300,), generator=g), torch.randint(0, 48, (300,), generator=g)
        columns = raw.columns([(edge_x, edge_y), (inner_x, inner_y)])
        # pixels far from every edge: the trunk runs on a crop of the image, whose own padding must never be read
        middle_x, middle_y = torch.randint(25, 36, (50,), generator=g), torch.randint(20, 26, (50,), generator=g)
        (middle,) = raw.columns([(middle_x, middle_y)])
    torch.testing.assert_close(columns[0], expected[0][:, edge_y, edge_x], **TOLERANCE)
    torch.testing.assert_close(columns[1], expected[0][:, inner_y, inner_x], **TOLERANCE)
    torch.testing.assert_close(middle, expected[0][:, middle_y, middle_x], **TOLERANCE)


def test_pooled_student_pyramid_equals_the_pyramid_of_the_plain_forward():
    net = randomised(student_quad_l2net_confcfs(), seed=3)
    image = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        expected = student_pyramid(net.features(image))
        trunk = FoldedTrunk(net)
        levels = pooled_student_pyramid(trunk.pooled(image, rows=18))
    assert [tuple(level.shape[-2:]) for level in levels] == [(32, 40), (16, 20), (8, 10), (4, 5)]
    assert levels[-1].is_contiguous()  # dense matching views dw16 as cells x channels
    for level, reference in zip(levels, expected[1:5], strict=True):
        torch.testing.assert_close(level, reference, rtol=1e-5, atol=1e-6)


def test_folded_trunk_refuses_what_it_cannot_fold():
    with pytest.raises(ValueError, match="fast"):
        FoldedTrunk(fast_quad_l2net_confcfs())
    with pytest.raises(ValueError, match="eval mode"):
        FoldedTrunk(student_quad_l2net_confcfs().train())
    trunk = FoldedTrunk(randomised(student_quad_l2net_confcfs()))
    with pytest.raises(ValueError, match="even"):
        trunk.pooled(torch.zeros(1, 3, 9, 8))
