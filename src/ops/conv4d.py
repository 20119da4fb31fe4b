"""Conv4d: 'same'-padded, stride-1 4-D convolution with an odd cubic kernel (NCNet's neighbourhood consensus).

The PyTorch reference folds the first spatial dim into the batch and sums S conv3d calls (the original NCNet code
loops over every position of that dim); the compiled CPU/CUDA kernels in csrc/ are faster and lighter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from corrlab.ops.ops4d_backend import compiled_ops4d


def conv4d_torch(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Reference: (B, Ci, I, J, K, L) * (Co, Ci, S, S, S, S) -> (B, Co, I, J, K, L)."""
    _check(x, weight)
    b, ci, i, j, k, l = x.shape
    co, s = weight.shape[0], weight.shape[2]
    p = s // 2
    padded = F.pad(x, (0, 0, 0, 0, 0, 0, p, p))
    out = None
    for a in range(s):
        slab = padded[:, :, a : a + i].transpose(1, 2).reshape(b * i, ci, j, k, l)
        term = F.conv3d(slab, weight[:, :, a], padding=p)
        out = term if out is None else out + term
    out = out.reshape(b, i, co, j, k, l).transpose(1, 2).contiguous()
    return out if bias is None else out + bias.reshape(1, co, 1, 1, 1, 1)


class _CompiledConv4d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, module) -> Tensor:
        ctx.module, ctx.with_bias = module, bias is not None
        ctx.save_for_backward(x, weight)
        return module.conv4d_forward(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x, grad_w, grad_b = ctx.module.conv4d_backward(grad.contiguous(), x, weight, ctx.with_bias)
        return grad_x, grad_w, (grad_b if ctx.with_bias else None), None


def conv4d(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """(B, Ci, I, J, K, L) * (Co, Ci, S, S, S, S) [+ bias (Co,)] -> (B, Co, I, J, K, L)."""
    _check(x, weight)
    module = compiled_ops4d(x.device)
    if module is None:
        return conv4d_torch(x, weight, bias)
    return _CompiledConv4d.apply(x, weight, bias, module)


class Conv4d(nn.Module):
    """4-D convolution layer; weight (out, in, S, S, S, S), 'same' padding, stride 1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"Conv4d needs an odd kernel size, got {kernel_size}")
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *(kernel_size,) * 4))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        bound = 1 / math.sqrt(in_channels * kernel_size**4)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return conv4d(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        co, ci, s = self.weight.shape[:3]
        return f"{ci}, {co}, kernel_size={s}, bias={self.bias is not None}"


def _check(x: Tensor, weight: Tensor) -> None:
    if x.ndim != 6 or weight.ndim != 6:
        raise ValueError(
            f"conv4d expects input (B, C, I, J, K, L) and weight (Co, Ci, S, S, S, S), got {tuple(x.shape)}, {tuple(weight.shape)}"
        )
    s = weight.shape[2]
    if weight.shape[1] != x.shape[1] or s % 2 != 1 or any(d != s for d in weight.shape[3:]):
        raise ValueError(f"conv4d: weight {tuple(weight.shape)} must be (Co, {x.shape[1]}, S, S, S, S) with S odd")
