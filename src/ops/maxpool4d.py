"""4-D max-pool (window k, stride k, remainder dropped) that keeps where the maximum was, as in NCNet's
relocalisation: the window index is (di * k + dj) * k^2 + dk * k + dl, stored as uint8 (k <= 4), the first
maximum winning on ties."""

from __future__ import annotations

import torch
from torch import Tensor

from corrlab.ops.ops4d_backend import compiled_ops4d


def maxpool4d_torch(corr: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Reference: (B, C, I, J, K, L) -> pooled (B, C, I//k, J//k, K//k, L//k) and the uint8 window index."""
    _check(corr, k)
    b, c, i, j, kk, ll = corr.shape
    i2, j2, k2, l2 = i // k, j // k, kk // k, ll // k
    cropped = corr[:, :, : i2 * k, : j2 * k, : k2 * k, : l2 * k]
    windows = cropped.reshape(b, c, i2, k, j2, k, k2, k, l2, k).permute(0, 1, 2, 4, 6, 8, 3, 5, 7, 9)
    values, index = windows.reshape(b, c, i2, j2, k2, l2, k**4).max(dim=-1)
    return values, index.to(torch.uint8)


class _CompiledMaxPool4d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, corr: Tensor, k: int, module) -> tuple[Tensor, Tensor]:
        values, index = module.maxpool4d_forward(corr, k)
        ctx.module, ctx.k, ctx.shape = module, k, tuple(corr.shape)
        ctx.save_for_backward(index)
        ctx.mark_non_differentiable(index)
        return values, index

    @staticmethod
    def backward(ctx, grad: Tensor, _grad_index: Tensor):
        (index,) = ctx.saved_tensors
        return ctx.module.maxpool4d_backward(grad.contiguous(), index, list(ctx.shape), ctx.k), None, None


def maxpool4d(corr: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(B, C, I, J, K, L) -> (pooled, uint8 window index), both (B, C, I//k, J//k, K//k, L//k)."""
    _check(corr, k)
    module = compiled_ops4d(corr.device)
    if module is None:
        return maxpool4d_torch(corr, k)
    return _CompiledMaxPool4d.apply(corr, k, module)


def window_offsets(index: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(di, dj, dk, dl) in [0, k) of a window index from maxpool4d (int64)."""
    index = index.long()
    return index // k**3, index // k**2 % k, index // k % k, index % k


def _check(corr: Tensor, k: int) -> None:
    if corr.ndim != 6:
        raise ValueError(f"maxpool4d expects (B, C, I, J, K, L), got {tuple(corr.shape)}")
    if not 1 <= k <= 4:
        raise ValueError(f"maxpool4d window must be 1..4 (uint8 index), got {k}")
    if min(corr.shape[2:]) < k:
        raise ValueError(f"maxpool4d: every spatial size of {tuple(corr.shape)} must be >= the window {k}")
