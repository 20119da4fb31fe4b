"""Torch stand-in for DenseMatching's / GOCor's CuPy local correlation, installed into an exported DenseMatching
snapshot at run time so that its networks run on a CPU (the benches in bench/gocor_*.py use it).

    corr[b, k, y, x] = (1/C) sum_c first[b, c, y, x] second[b, c, y + dy, x + dx],   k = (dy + 4) * 9 + (dx + 4)

computed one window row (dy) at a time, so that its memory is 9 (not 81) shifted copies of `second`.  `reordered()`
sums the same products in reverse order (channels; window offsets) to measure what float32 summation order alone
changes.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import torch
import torch.nn.functional as F

RADIUS, SIZE = 4, 9
_state = {"reverse": False}


def _window_row(padded: torch.Tensor, dy: int, h: int, w: int) -> torch.Tensor:
    """(B, C, 9, H, W): `second` shifted by (dy, dx) for dx = -4..4."""
    return torch.stack([padded[:, :, dy : dy + h, dx : dx + w] for dx in range(SIZE)], dim=2)


def _correlation(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    if _state["reverse"]:
        first, second = first.flip(1), second.flip(1)
    _, c, h, w = first.shape
    padded = F.pad(second, (RADIUS,) * 4)
    rows = [(first[:, :, None] * _window_row(padded, dy, h, w)).sum(1) for dy in range(SIZE)]
    return torch.cat(rows, dim=1) / c


def _transpose(input: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    _, c, h, w = second.shape
    padded = F.pad(second, (RADIUS,) * 4)
    rows = range(SIZE - 1, -1, -1) if _state["reverse"] else range(SIZE)
    out = None
    for dy in rows:
        weights, windows = input[:, None, dy * SIZE : (dy + 1) * SIZE], _window_row(padded, dy, h, w)
        if _state["reverse"]:
            weights, windows = weights.flip(2), windows.flip(2)
        term = (weights * windows).sum(2)
        out = term if out is None else out + term
    return out / c


def _scatter(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """out[c, p] = (1/C) sum_k weights[k, p - d_k] values[c, p - d_k]: the adjoint of both products w.r.t. the
    shifted argument."""
    b, c, h, w = values.shape
    out = values.new_zeros(b, c, h + 2 * RADIUS, w + 2 * RADIUS)
    for k in range(SIZE * SIZE):
        dy, dx = divmod(k, SIZE)
        out[:, :, dy : dy + h, dx : dx + w] += weights[:, k : k + 1] * values
    return out[:, :, RADIUS : RADIUS + h, RADIUS : RADIUS + w] / c


class _Correlation(torch.autograd.Function):
    """Saves only its inputs (as the CuPy Functions do): the unrolled GOCor steps would otherwise keep 9 shifted
    copies of every feature map for the backward pass."""

    @staticmethod
    def forward(ctx, first, second):
        ctx.save_for_backward(first, second)
        return _correlation(first, second)

    @staticmethod
    def backward(ctx, grad):
        first, second = ctx.saved_tensors
        return _transpose(grad, second), _scatter(grad, first)


class _Transpose(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, second):
        ctx.save_for_backward(input, second)
        return _transpose(input, second)

    @staticmethod
    def backward(ctx, grad):
        input, second = ctx.saved_tensors
        return _correlation(grad, second), _scatter(input, grad)


def correlation(first=None, second=None, *, reference_features=None, query_features=None) -> torch.Tensor:
    """FunctionCorrelation (PWC-Net calls it with keywords)."""
    first = reference_features if first is None else first
    second = query_features if second is None else second
    return _Correlation.apply(first, second)


def correlation_transpose(input: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """FunctionCorrelationTranspose: out[c] = (1/C) sum_k input[k] second[c, +dy_k, +dx_k]."""
    return _Transpose.apply(input, second)


class ModuleCorrelation(torch.nn.Module):
    def forward(self, first, second):
        return correlation(first, second)


def install(reference_root: str) -> None:
    """Put the snapshot on sys.path and replace its two CuPy correlation modules by this stand-in."""
    sys.path.insert(0, reference_root)
    import models.modules.local_correlation.correlation as plain
    import third_party.GOCor.GOCor.local_gocor as local_gocor

    plain.FunctionCorrelation = correlation
    plain.ModuleCorrelation = ModuleCorrelation
    local_gocor.FunctionCorrelation = correlation
    local_gocor.FunctionCorrelationTranspose = correlation_transpose


@contextmanager
def reordered():
    _state["reverse"] = True
    try:
        yield
    finally:
        _state["reverse"] = False
