"""An R2D2 / GCM-student trunk evaluated fast in eval mode, equal to `R2D2Net.features` up to float rounding.

* BatchNorm is folded into the convolution before it, and the convolutions run channels-last.
* The trunk is split at its last ReLU: a non-linear `head` (computed at full resolution) and a linear `tail` of 2 x 2
  convolutions dilated 4, 8, 16.  Averaging 2 x 2 blocks commutes with such a convolution dilated d (d % 4 == 0),
  which becomes dilated d / 2 on the stride-2 grid, zero padding included (the map sizes are even).  So the
  average-pooled raw map is the tail run on the pooled head (`pooled_tail`, 1/4 of the tail's work).  The
  full-resolution raw map is only computed at the pixels that are read: the first tail convolution densely
  (most pixels are read through it), the others as gathers and matrix products on the pixels each needs
  (`SparseRawMap`).  The head runs in row bands (`run`), so no full-resolution head map is held.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from corrlab.models.r2d2.patchnet import R2D2Net

CHUNK_ROWS = 65536  # pixels per gather / matrix product of the sparse tail (bounds its scratch memory)
BAND_ROWS = 256  # output rows per band of the head (bounds its full-resolution scratch memory; ~5 % halo rows)


@dataclass
class FoldedConv:
    """A convolution with the BatchNorm after it folded in (weight, bias), and whether a ReLU follows."""

    weight: Tensor
    bias: Tensor
    dilation: int
    padding: int
    relu: bool = False

    @property
    def taps(self) -> list[tuple[int, int]]:
        """(dy, dx) input offsets of the kernel taps, in (ky, kx) order."""
        k = self.weight.shape[-1]
        return [
            (ky * self.dilation - self.padding, kx * self.dilation - self.padding) for ky in range(k) for kx in range(k)
        ]


def fold(ops: nn.ModuleList) -> list[FoldedConv]:
    """The trunk's conv [BN] [ReLU] sequence with every eval-mode BatchNorm folded into its convolution."""
    convs: list[FoldedConv] = []
    for op in ops:
        if isinstance(op, nn.Conv2d):
            k, d = op.kernel_size[0], op.dilation[0]
            if (
                op.stride != (1, 1)
                or op.groups != 1
                or op.kernel_size != (k, k)
                or op.padding != ((k - 1) * d // 2,) * 2
            ):
                raise ValueError(f"folded trunk: only square stride-1 'same' convolutions, got {op}")
            bias = op.bias if op.bias is not None else op.weight.new_zeros(op.out_channels)
            convs.append(FoldedConv(op.weight.detach().clone(), bias.detach().clone(), d, op.padding[0]))
        elif isinstance(op, nn.BatchNorm2d):
            if op.training or not op.track_running_stats or not convs or convs[-1].relu:
                raise ValueError(f"folded trunk: {op} must be in eval mode and follow a convolution directly")
            scale = torch.rsqrt(op.running_var + op.eps)
            shift = -op.running_mean * scale
            if op.affine:
                scale, shift = scale * op.weight, shift * op.weight + op.bias
            conv = convs[-1]
            conv.weight = conv.weight * scale.view(-1, 1, 1, 1)
            conv.bias = conv.bias * scale + shift
        elif isinstance(op, nn.ReLU):
            convs[-1].relu = True
        else:
            raise ValueError(f"folded trunk: unsupported layer {op} (only conv, BatchNorm2d, ReLU)")
    return convs


class FoldedTrunk:
    """`net`'s trunk folded and split into `head` (up to the last ReLU) and its linear `tail`."""

    def __init__(self, net: R2D2Net) -> None:
        if net.upsample != 1:
            raise ValueError("folded trunk: the fast (max-pool + upsample) R2D2 variants are not supported")
        convs = fold(net.ops)
        last_relu = max(i for i, conv in enumerate(convs) if conv.relu)
        self.head_convs, self.tail_convs = convs[: last_relu + 1], convs[last_relu + 1 :]
        for conv in self.head_convs + self.tail_convs:
            conv.weight = conv.weight.contiguous(memory_format=torch.channels_last)
        if not all(conv.weight.shape[-1] == 2 and conv.dilation % 4 == 0 for conv in self.tail_convs):
            raise ValueError("folded trunk: the tail must be 2 x 2 convolutions dilated by multiples of 4")

    def head(self, image: Tensor) -> Tensor:
        """The post-ReLU map the tail reads, channels-last, at the input's resolution."""
        x = image.contiguous(memory_format=torch.channels_last)
        for conv in self.head_convs:
            x = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation)
            if conv.relu:
                x = x.relu_()
        return x

    def run(
        self, image: Tensor, pooled: bool = True, sparse: bool = True, rows: int = BAND_ROWS
    ) -> tuple[Tensor | None, SparseRawMap | None]:
        """`avg_pool2d(features(image), 2)` (if `pooled`) and `features(image)` as a SparseRawMap (if `sparse`),
        computed in bands of `rows` output rows, each from the input rows it reads (no full-resolution head is held;
        the first tail convolution is kept at full resolution for the SparseRawMap)."""
        height, width = image.shape[-2:]
        if height % 2 or width % 2 or rows % 2:
            raise ValueError(f"folded trunk: needs even map sizes and band rows, got {height} x {width}, {rows}")
        first = self.tail_convs[0]
        halo = sum(conv.padding for conv in self.head_convs) + first.padding
        channels = first.weight.shape[1]
        pooled_head = start = None
        if pooled:
            pooled_head = image.new_empty(1, height // 2, width // 2, channels).permute(0, 3, 1, 2)  # channels-last
        if sparse:
            start = image.new_empty(1, height, width, first.weight.shape[0]).permute(0, 3, 1, 2)
        for top in range(0, height, rows):
            bottom, crop_top = min(height, top + rows), max(0, top - halo)
            head = self.head(image[:, :, crop_top : min(height, bottom + halo)])
            if pooled_head is not None:
                band = head[:, :, top - crop_top : bottom - crop_top]
                pooled_head[:, :, top // 2 : bottom // 2] = F.avg_pool2d(band, 2)
            if start is not None:
                band = F.conv2d(head, first.weight, first.bias, padding=first.padding, dilation=first.dilation)
                start[:, :, top:bottom] = band[:, :, top - crop_top : bottom - crop_top]
        pooled_raw = None if pooled_head is None else self.pooled_tail(pooled_head)
        return pooled_raw, None if start is None else SparseRawMap(start, self.tail_convs[1:])

    def pooled_tail(self, pooled_head: Tensor) -> Tensor:
        """The tail at half dilation on the 2 x 2-averaged head: `avg_pool2d(tail(head), 2)`."""
        x = pooled_head
        for conv in self.tail_convs:
            x = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding // 2, dilation=conv.dilation // 2)
        return x


class SparseRawMap:
    """The result of linear 'same' convolutions `convs` applied to the channels-last map `start`, computed only at
    the pixels asked for: each convolution runs, as gathers and matrix products, on the pixels the next one reads
    (zero outside the image, as its padding).  Pixels are flat indices of the map padded by `margin` on each side."""

    def __init__(self, start: Tensor, convs: list[FoldedConv]) -> None:
        self.start, self.convs = start, convs
        height, width = start.shape[-2:]
        self.margin = max(abs(o) for conv in convs for tap in conv.taps for o in tap)
        self.padded_width = width + 2 * self.margin
        grid = torch.arange((height + 2 * self.margin) * self.padded_width, device=start.device)
        y, x = grid // self.padded_width - self.margin, grid % self.padded_width - self.margin
        self.inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        self.start_row = torch.where(self.inside, y * width + x, 0)  # padded pixel -> row of the channels-last start

    def offsets(self, conv: FoldedConv) -> list[int]:
        return [dy * self.padded_width + dx for dy, dx in conv.taps]

    def layer(self, values: Tensor, row_of: Tensor, positions: Tensor, conv: FoldedConv) -> Tensor:
        """One tail convolution at `positions` from `values` (`row_of`: padded pixel -> row of `values`)."""
        c_out, c_in = conv.weight.shape[:2]
        taps = conv.weight.permute(2, 3, 1, 0).reshape(-1, c_in, c_out)  # per tap (ky, kx): c_in x c_out
        out = conv.bias.expand(len(positions), c_out).contiguous()
        gathered = values.new_empty(min(len(positions), CHUNK_ROWS), c_in)
        for start in range(0, len(positions), CHUNK_ROWS):
            chunk = positions[start : start + CHUNK_ROWS]
            block, rows = out[start : start + CHUNK_ROWS], gathered[: len(chunk)]
            for offset, weight in zip(self.offsets(conv), taps, strict=True):
                source = chunk + offset
                torch.index_select(values, 0, row_of[source], out=rows)
                rows.index_fill_(0, (~self.inside[source]).nonzero().squeeze(1), 0)  # the zero padding
                block.addmm_(rows, weight)
        return out

    def columns(self, points: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
        """For each (x, y) integer pair of (N,) tensors, the (C, N) raw features at those pixels."""
        flat = torch.cat([(y + self.margin) * self.padded_width + x + self.margin for x, y in points])
        mask = torch.zeros_like(self.inside)
        mask[flat] = True
        needed = [mask.nonzero().squeeze(1)]  # the pixels each convolution outputs, last one last
        for conv in reversed(self.convs[1:]):
            mask = torch.zeros_like(self.inside)
            for offset in self.offsets(conv):
                mask[needed[0] + offset] = True
            needed.insert(0, (mask & self.inside).nonzero().squeeze(1))
        values = self.start.permute(0, 2, 3, 1).reshape(-1, self.start.shape[1])  # a view (channels-last)
        row_of = self.start_row
        for conv, positions in zip(self.convs, needed, strict=True):
            values = self.layer(values, row_of, positions, conv)
            row_of = torch.zeros_like(self.start_row)
            row_of[positions] = torch.arange(len(positions), device=positions.device)
        return list(values[row_of[flat]].t().split([len(x) for x, _ in points], dim=1))
