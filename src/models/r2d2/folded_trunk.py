"""An R2D2 / GCM-student trunk evaluated fast and in little memory in eval mode, equal to `R2D2Net.features` up to
float rounding.

* BatchNorm is folded into the convolution before it, and the convolutions run channels-last.
* The trunk is split at its last ReLU: a non-linear `head` (computed at full resolution) and a linear `tail` of 2 x 2
  convolutions dilated 4, 8, 16.  Averaging 2 x 2 blocks commutes with such a convolution dilated d (d % 4 == 0),
  which becomes dilated d / 2 on the stride-2 grid, zero padding included (the map sizes are even).  So the
  average-pooled raw map is the tail run on the pooled head (`pooled`, 1/4 of the tail's work).
* Every pass is streamed by rows (`RowConv`): the image goes in chunks of rows through the convolutions, each keeping
  only the input rows its next outputs still need, so no full-resolution map is ever held and no row is computed twice.
* The full-resolution raw map is only computed at the pixels that are asked for (`RawAtPixels`, read by GCM's last
  refinement): head and first tail convolution streamed densely, the other two as gathers and matrix products on the
  pixels each needs (`SparseRawMap`) in a sliding window of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from corrlab.models.r2d2.patchnet import R2D2Net

CHUNK_ROWS = 65536  # pixels per gather / matrix product of the sparse tail (bounds its scratch memory)
STREAM_ROWS = 32  # image rows per chunk of a streamed pass (bounds its full-resolution scratch memory)


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


class RowConv:
    """One folded 'same' convolution fed its input by chunks of rows, top to bottom: it keeps the last rows the next
    outputs still need and adds the zero rows of its padding above the first row and below the last, so each output
    row is computed once, from the same inputs as the whole-map convolution (`scale` 2: dilation and padding halved,
    the tail on the 2 x 2-pooled grid).  The input rows are gathered in one buffer kept across chunks: a fresh one per
    chunk cost page faults under eval.py's 128 kB mmap threshold (docs/gcm.md)."""

    def __init__(self, conv: FoldedConv, scale: int = 1) -> None:
        self.conv, self.dilation, self.padding = conv, conv.dilation // scale, conv.padding // scale
        self.buffer: Tensor | None = None
        self.filled = -1  # input rows held at the top of the buffer; -1: nothing pushed yet

    def append(self, rows: Tensor) -> None:
        """Copy `rows` below the rows held, growing the buffer (channels-last) when they do not fit."""
        needed = self.filled + rows.shape[2]
        if self.buffer is None or self.buffer.shape[2] < needed:
            # room for the closing zero rows too: the first chunk sizes the buffer for every later one
            grown = rows.new_empty(1, rows.shape[1], needed + 2 * self.padding, rows.shape[3])
            grown = grown.contiguous(memory_format=torch.channels_last)
            if self.filled:
                grown[:, :, : self.filled] = self.buffer[:, :, : self.filled]
            self.buffer = grown
        self.buffer[:, :, self.filled : needed] = rows
        self.filled = needed

    def push(self, rows: Tensor | None, last: bool) -> Tensor | None:
        """The output rows computable from everything pushed so far (`last`: the image ends here), or None."""
        like = rows if rows is not None else self.buffer
        if self.filled < 0:
            self.filled = 0
            self.append(like.new_zeros(1, like.shape[1], self.padding, like.shape[3]))
        if rows is not None:
            self.append(rows)
        if last:
            self.append(like.new_zeros(1, like.shape[1], self.padding, like.shape[3]))
        span = 2 * self.padding  # input rows above + below an output row
        if self.filled <= span:
            return None
        x = self.buffer[:, :, : self.filled]
        out = F.conv2d(x, self.conv.weight, self.conv.bias, padding=(0, self.padding), dilation=self.dilation)
        if last:
            self.buffer, self.filled = None, -1
        else:  # the rows the next outputs still need move to the top
            kept = self.buffer[:, :, self.filled - span : self.filled]
            self.buffer[:, :, :span] = kept if self.filled >= 2 * span else kept.clone()  # clone: overlapping rows
            self.filled = span
        return out.relu_() if self.conv.relu else out


class RowPool:
    """2 x 2 average pooling fed by chunks of rows (an odd row waits for its pair)."""

    def __init__(self) -> None:
        self.carry: Tensor | None = None

    def push(self, rows: Tensor | None, last: bool) -> Tensor | None:
        if rows is not None and self.carry is not None:
            rows = torch.cat([self.carry, rows], 2)
        elif rows is None:
            rows = self.carry
        if rows is None or rows.shape[2] < 2:
            self.carry = rows
            return None
        even = rows.shape[2] - rows.shape[2] % 2
        self.carry = rows[:, :, even:] if even < rows.shape[2] else None
        return F.avg_pool2d(rows[:, :, :even], 2)


def stream(image: Tensor, stages: list, rows: int = STREAM_ROWS):
    """Push `image` (1 x C x H x W) through `stages` in chunks of `rows` rows; yields each chunk of output rows, in
    order, as it becomes computable."""
    height = image.shape[2]
    for top in range(0, height, rows):
        x: Tensor | None = image[:, :, top : top + rows]
        last = top + rows >= height
        for stage in stages:
            x = stage.push(x, last)
            if x is None and not last:
                break
        if x is not None:
            yield x


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

    def check(self, image: Tensor, rows: int) -> None:
        """Refuse odd map sizes or stream rows (the 2 x 2 pooling and the half-dilation tail need even ones)."""
        height, width = image.shape[-2:]
        if height % 2 or width % 2 or rows % 2:
            raise ValueError(f"folded trunk: needs even map sizes and stream rows, got {height} x {width}, {rows}")

    def pooled(self, image: Tensor, rows: int = STREAM_ROWS) -> Tensor:
        """`avg_pool2d(features(image), 2)`, channels-last: the head streamed at full resolution, pooled, and the tail
        at half dilation on the pooled rows."""
        self.check(image, rows)
        height, width = image.shape[-2:]
        stages = [RowConv(conv) for conv in self.head_convs] + [RowPool()]
        stages += [RowConv(conv, scale=2) for conv in self.tail_convs]
        channels = self.tail_convs[-1].weight.shape[0]
        out = image.new_empty(1, height // 2, width // 2, channels).permute(0, 3, 1, 2)  # channels-last
        top = 0
        for chunk in stream(image, stages, rows):
            out[:, :, top : top + chunk.shape[2]] = chunk
            top += chunk.shape[2]
        return out

    def feature_rows(self, image: Tensor, rows: int = STREAM_ROWS):
        """`features(image)` at full resolution, yielded by chunks of rows, top to bottom (channels-last): R2D2's
        streamed extraction reads each chunk and lets it go."""
        yield from stream(image, [RowConv(conv) for conv in self.head_convs + self.tail_convs], rows)

    def raw_at_pixels(self, image: Tensor, rows: int = STREAM_ROWS) -> RawAtPixels:
        self.check(image, rows)
        return RawAtPixels(self, image, rows)


class RawAtPixels:
    """`features(image)` computed only at the pixels `columns` asks for: the head and the first tail convolution
    streamed densely over the rows and columns those pixels read, then, for each band of `rows` output rows, the other tail convolutions sparsely
    (`SparseRawMap`) on a window of the first one's rows reaching as far as they read."""

    def __init__(self, trunk: FoldedTrunk, image: Tensor, rows: int) -> None:
        self.trunk, self.image, self.rows = trunk, image, rows
        self.reach = sum(conv.padding for conv in trunk.tail_convs[1:])  # rows the sparse convolutions read around
        self.halo = sum(conv.padding for conv in trunk.head_convs + trunk.tail_convs)  # pixels the trunk reads around

    def columns(self, points: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
        """For each (x, y) integer pair of (N,) tensors, the (C, N) raw features at those pixels."""
        xs, ys = torch.cat([x for x, _ in points]), torch.cat([y for _, y in points])
        out = self.image.new_empty(self.trunk.tail_convs[-1].weight.shape[0], len(xs))
        if len(xs) == 0:
            return list(out.split([len(x) for x, _ in points], dim=1))
        # only the rows and columns the asked pixels read: a crop `halo` pixels beyond them (or to the image's edge,
        # where the zero padding is the convolutions' own); inside, the crop's own padding is never read
        full_height, full_width = self.image.shape[-2:]
        top, left = max(0, int(ys.min()) - self.halo), max(0, int(xs.min()) - self.halo)
        bottom = min(full_height, int(ys.max()) + 1 + self.halo)
        right = min(full_width, int(xs.max()) + 1 + self.halo)
        image, xs, ys = self.image[:, :, top:bottom, left:right], xs - left, ys - top
        height = image.shape[2]
        stages = [RowConv(conv) for conv in self.trunk.head_convs] + [RowConv(self.trunk.tail_convs[0])]
        # chunks of first-convolution rows from row window_top on; `done`: the output rows before it are finished
        window, window_top, done, produced = [], 0, 0, 0
        for chunk in stream(image, stages, self.rows):
            window.append(chunk)
            produced += chunk.shape[2]
            while done < height and produced >= min(height, done + self.rows + self.reach):
                bottom = min(height, done + self.rows)
                pick = ((ys >= done) & (ys < bottom)).nonzero().squeeze(1)
                if len(pick):
                    start = torch.cat(window, 2) if len(window) > 1 else window[0]
                    sparse = SparseRawMap(start, self.trunk.tail_convs[1:])
                    out[:, pick] = sparse.columns([(xs[pick], ys[pick] - window_top)])[0]
                done = bottom
                keep_from = max(0, done - self.reach)  # the next band reads first-convolution rows from here
                while window and window_top + window[0].shape[2] <= keep_from:
                    window_top += window.pop(0).shape[2]
        return list(out.split([len(x) for x, _ in points], dim=1))


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
