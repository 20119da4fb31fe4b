"""4-D correlation of two feature maps: out[b, 0, i, j, k, l] = <feat0[b, :, i, j], feat1[b, :, k, l]>.

The correlation is a batched matrix product, which BLAS / cuBLAS compute faster than our kernels
(bench/ops4d.py), so the default path is torch.bmm on every device; CORRLAB_OPS=cpp|cuda selects the compiled
kernels (kept equivalent by tests).  `pooled_correlation4d` fuses the correlation with the 4-D max-pool block by
block so that the full-resolution volume is never held in memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

from corrlab.ops.extension import forced_backend
from corrlab.ops.maxpool4d import maxpool4d
from corrlab.ops.ops4d_backend import compiled_ops4d

BLOCK_BYTES = 64 * 2**20  # full-resolution correlation held at once by pooled_correlation4d


def correlation4d_torch(feat0: Tensor, feat1: Tensor) -> Tensor:
    """Reference: (B, C, H0, W0) x (B, C, H1, W1) -> (B, 1, H0, W0, H1, W1) with one bmm."""
    b, c, h0, w0 = feat0.shape
    _, _, h1, w1 = feat1.shape
    product = torch.bmm(feat0.reshape(b, c, h0 * w0).transpose(1, 2), feat1.reshape(b, c, h1 * w1))
    return product.reshape(b, 1, h0, w0, h1, w1)


class _CompiledCorrelation4d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feat0: Tensor, feat1: Tensor, module) -> Tensor:
        ctx.module = module
        ctx.save_for_backward(feat0, feat1)
        return module.correlation4d_forward(feat0, feat1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        feat0, feat1 = ctx.saved_tensors
        grad0, grad1 = ctx.module.correlation4d_backward(grad.contiguous(), feat0.contiguous(), feat1.contiguous())
        return grad0, grad1, None


def correlation4d(feat0: Tensor, feat1: Tensor) -> Tensor:
    """(B, C, H0, W0) x (B, C, H1, W1) -> (B, 1, H0, W0, H1, W1)."""
    if feat0.shape[:2] != feat1.shape[:2]:
        raise ValueError(f"correlation4d: batch/channels differ: {tuple(feat0.shape)} vs {tuple(feat1.shape)}")
    module = compiled_ops4d(feat0.device) if forced_backend() in ("cpp", "cuda") else None
    if module is None:
        return correlation4d_torch(feat0, feat1)
    return _CompiledCorrelation4d.apply(feat0, feat1, module)


def pooled_correlation4d(feat0: Tensor, feat1: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """maxpool4d(correlation4d(feat0, feat1), k) computed over blocks of k rows of image 0, so at most
    BLOCK_BYTES of full-resolution correlation exist at once.  Returns (pooled, window index) like maxpool4d."""
    b, _, h0, w0 = feat0.shape
    row_bytes = k * w0 * feat1.shape[2] * feat1.shape[3] * feat0.element_size() * b
    rows_per_block = max(1, BLOCK_BYTES // max(row_bytes, 1))
    pooled, index = [], []
    for start in range(0, h0 // k, rows_per_block):
        stop = min(h0 // k, start + rows_per_block)
        block = correlation4d(feat0[:, :, start * k : stop * k], feat1)
        values, argmax = maxpool4d(block, k)
        pooled.append(values)
        index.append(argmax)
    return torch.cat(pooled, dim=2), torch.cat(index, dim=2)
