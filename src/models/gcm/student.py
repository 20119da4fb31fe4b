"""GCM's distilled patch descriptor `Student_Quad_L2Net_ConfCFS`: a 6-conv dilated R2D2 trunk (290,627 weights)
giving a raw 128-d map at the input's resolution, and its L2-normalised average-pool pyramid (`R2D2_STU`)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from corrlab.models.r2d2.patchnet import ConvSpec, R2D2Net, normalize_channels_


def student_specs(dim: int = 128, mchan: int = 4) -> list[ConvSpec]:
    """conv 3x3 (32) | 3x3 (64) | 3x3 d2 (128) | 2x2 d4, BN | 2x2 d8, BN | 2x2 d16 (dim): the `ops.{0..13}` layout."""
    return [
        ConvSpec(8 * mchan),
        ConvSpec(16 * mchan),
        ConvSpec(32 * mchan, dilation=2),
        ConvSpec(32 * mchan, kernel=2, dilation=4, relu=False),
        ConvSpec(32 * mchan, kernel=2, dilation=8, relu=False),
        ConvSpec(dim, kernel=2, dilation=16, bn=False, relu=False),
    ]


def student_quad_l2net_confcfs(dim: int = 128, mchan: int = 4) -> R2D2Net:
    """`Student_Quad_L2Net_ConfCFS()` with its (unused by GCM) `clf` / `sal` heads, so dstl_r2d2.pt loads strictly."""
    return R2D2Net(student_specs(dim, mchan), dim)


def student_pyramid(raw: Tensor) -> list[Tensor]:
    """[raw, dw2, dw4, dw8, dw16, dw16]: each level is `F.normalize(avg_pool2d(previous, 2))`; the last map is
    listed twice (the same tensor), as the reference's `convert2namedtuple` does when the last two sizes differ."""
    levels = [raw]
    for _ in range(4):
        levels.append(F.normalize(F.avg_pool2d(levels[-1], 2, stride=2), p=2, dim=1))
    return [*levels, levels[-1]]


def coarse_student_level(raw: Tensor) -> Tensor:
    """The dw16 level alone (what stage 0 needs of image B); intermediate levels are freed as it goes."""
    x = raw
    for _ in range(4):
        x = F.normalize(F.avg_pool2d(x, 2, stride=2), p=2, dim=1)
    return x


def pooled_student_pyramid(pooled_raw: Tensor) -> list[Tensor]:
    """[dw2, dw4, dw8, dw16] from `avg_pool2d(raw, 2)` (FoldedTrunk.pooled): `student_pyramid(raw)[1:5]`, in the
    input's memory format except dw16, contiguous (dense matching views it as cells x channels).  dw2 is
    `pooled_raw` normalised in place (F.normalize's arithmetic, without a second full copy)."""
    levels = [normalize_channels_(pooled_raw)]
    for _ in range(3):
        levels.append(F.normalize(F.avg_pool2d(levels[-1], 2, stride=2), p=2, dim=1))
    levels[-1] = levels[-1].contiguous()
    return levels
