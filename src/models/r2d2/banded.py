"""The trunk of an R2D2 network (conv [BN] [ReLU] blocks, no stride, no pooling) computed in horizontal bands of
output rows, each band from the input rows its receptive field needs, so no full-resolution intermediate map is
ever held: only the band's, and whatever the caller keeps of each output band.

Every output value equals the whole-image forward pass bit for bit: each band's convolutions see exactly the rows
the whole-image pass would (real rows inside the image, zero rows where the whole pass pads), and oneDNN's blocked
(16-channel) kernels compute an output pixel in the same order whatever the band's height.  That holds for layers
of 16k channels (all released R2D2 / GCM nets); narrower ones (8 channels) pick other kernels whose results move
by 1e-7 with the height, so they are refused.  Checked in tests/test_r2d2_banded.py and, at full size with the
released weights, in tests/test_gcm_real.py.  BatchNorm (eval, affine=False) is applied in place as
`x * rsqrt(var + eps) + (-mean * rsqrt(var + eps))` with one rounding (`addcmul`): PyTorch's own kernel computes
the same fused multiply-add, without allocating a new map.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BAND_ROWS = 256  # output rows per band: a multiple of 16 (stride-16 pyramids pool band by band); 128 is ~20 % slower


def conv_blocks(ops: nn.ModuleList) -> list[tuple[nn.Conv2d, list[nn.Module]]]:
    """The trunk as (conv, the BN / ReLU after it) blocks; anything else (pooling, strides) is refused."""
    blocks: list[tuple[nn.Conv2d, list[nn.Module]]] = []
    for op in ops:
        if isinstance(op, nn.Conv2d):
            if op.stride != (1, 1) or op.groups != 1 or op.padding_mode != "zeros":
                raise ValueError(f"banded trunk: only stride-1 zero-padded convolutions, got {op}")
            if op.out_channels % 16:
                raise ValueError(
                    f"banded trunk: {op} has {op.out_channels} output channels; bands are bit-identical to the "
                    "whole-image pass only for multiples of 16 (oneDNN then uses the same blocked kernel)"
                )
            blocks.append((op, []))
        elif isinstance(op, (nn.BatchNorm2d, nn.ReLU)) and blocks:
            if isinstance(op, nn.BatchNorm2d) and (op.affine or op.training or op.running_var is None):
                raise ValueError(f"banded trunk: only eval-mode BatchNorm2d(affine=False), got {op}")
            blocks[-1][1].append(op)
        else:
            raise ValueError(f"banded trunk: unsupported layer {op} (only conv, BatchNorm2d, ReLU)")
    return blocks


def batch_norm_(x: Tensor, bn: nn.BatchNorm2d) -> Tensor:
    """Eval BatchNorm(affine=False) in place, bit-identical to `bn(x)` (PyTorch's CPU kernel is the same fma)."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    return torch.addcmul(shift.view(1, -1, 1, 1), x, scale.view(1, -1, 1, 1), out=x)


def needed_rows(blocks, first: int, last: int, height: int) -> list[tuple[int, int]]:
    """For output rows [first, last): the rows [a, b) (clipped to the image) each block must output, first block
    first, and at index 0 the input rows of the first block."""
    ranges = [(first, last)]
    for conv, _ in reversed(blocks):
        a, b = ranges[0]
        pad, reach = conv.padding[0], conv.dilation[0] * (conv.kernel_size[0] - 1)
        ranges.insert(0, (max(a - pad, 0), min(b - pad + reach, height)))
    return ranges


@torch.no_grad()
def band_forward(blocks, image: Tensor, first: int, last: int) -> Tensor:
    """Trunk output rows [first, last) of a B x C x H x W input (inference only: no graph is kept)."""
    height = image.shape[2]
    ranges = needed_rows(blocks, first, last, height)
    top, x = ranges[0][0], image[:, :, ranges[0][0] : ranges[0][1]]
    for (conv, after), (a, b) in zip(blocks, ranges[1:]):
        pad, reach = conv.padding[0], conv.dilation[0] * (conv.kernel_size[0] - 1)
        want_top, want_bottom = a - pad, b - pad + reach  # input rows of this block, zero outside [0, height)
        x = x[:, :, max(want_top, 0) - top : min(want_bottom, height) - top]
        x = F.pad(x, (0, 0, max(-want_top, 0), max(want_bottom - height, 0))).contiguous()
        x = F.conv2d(x, conv.weight, conv.bias, padding=(0, conv.padding[1]), dilation=conv.dilation)
        for op in after:
            x = batch_norm_(x, op) if isinstance(op, nn.BatchNorm2d) else x.clamp_min_(0)
        top = a
    return x


def band_starts(height: int, rows: int) -> list[tuple[int, int]]:
    """[first, last) row ranges of `rows` rows; a last band shorter than rows / 2 joins the one before it (oneDNN
    picks other kernels for very short bands: 5 rows of 20 pixels moved results by 1e-7)."""
    starts = list(range(0, height, rows))
    if len(starts) > 1 and height - starts[-1] < rows // 2:
        starts.pop()
    return list(zip(starts, [*starts[1:], height]))


def trunk_bands(ops: nn.ModuleList, image: Tensor, rows: int = BAND_ROWS) -> Iterator[tuple[int, Tensor]]:
    """(first row, band) for consecutive bands of about `rows` output rows of the trunk `ops` on `image`."""
    blocks = conv_blocks(ops)
    for first, last in band_starts(image.shape[2], rows):
        yield first, band_forward(blocks, image, first, last)


def banded_features(ops: nn.ModuleList, image: Tensor, rows: int = BAND_ROWS) -> Tensor:
    """The whole output map, assembled band by band (bit-identical to running `ops` on the image)."""
    out: Tensor | None = None
    for first, band in trunk_bands(ops, image, rows):
        if out is None:
            out = band.new_empty(*band.shape[:2], image.shape[2], band.shape[3])
        out[:, :, first : first + band.shape[2]] = band
    return out
