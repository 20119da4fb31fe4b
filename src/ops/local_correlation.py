"""Local (windowed) correlation of PWC-Net / GLU-Net / GOCor and its adjoint.

    corr[b, k, y, x] = (1/C) sum_c first[b, c, y, x] * second[b, c, y + dy, x + dx],   k = (dy + r)(2r + 1) + (dx + r)

with zero outside the image: the channel order (dy-major) and the 1/C of the FlowNet2-derived CuPy kernels that
GOCor / DenseMatching use, so their weights transfer.  `local_correlation_transpose(input, second)` is the adjoint
with respect to `first`: <corr(f, s), r> = <f, corr_transpose(r, s)>.  Backends: the PyTorch reference (shifted
products), C++ with OpenMP and CUDA kernels compiled on first use (src/ops/extension.py), all differentiable to any
order (the compiled gradients are themselves the three compiled products).
"""

from __future__ import annotations

from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor

from corrlab.ops.extension import compiled_or_none, forced_backend, select_backend

RADIUS = 4  # PWC-Net md = 4: a 9 x 9 window, 81 channels
CPU_SOURCES = ("local_correlation_cpu.cpp",)
CUDA_SOURCES = ("local_correlation_cuda_bind.cpp", "local_correlation_cuda.cu")


def _shifts(radius: int):
    """(k, dy, dx) in the kernels' channel order."""
    size = 2 * radius + 1
    return [(k, k // size - radius, k % size - radius) for k in range(size * size)]


def local_correlation_torch(first: Tensor, second: Tensor, radius: int = RADIUS) -> Tensor:
    """Reference: (B, C, H, W) x (B, C, H, W) -> (B, (2r+1)^2, H, W)."""
    _, c, h, w = first.shape
    padded = F.pad(second, (radius,) * 4)
    planes = [
        (first * padded[:, :, radius + dy : radius + dy + h, radius + dx : radius + dx + w]).sum(1)
        for _, dy, dx in _shifts(radius)
    ]
    return torch.stack(planes, dim=1) / c


def local_correlation_transpose_torch(input: Tensor, second: Tensor, radius: int = RADIUS) -> Tensor:
    """Reference adjoint: (B, (2r+1)^2, H, W) x (B, C, H, W) -> (B, C, H, W)."""
    _, c, h, w = second.shape
    padded = F.pad(second, (radius,) * 4)
    out = torch.zeros_like(second)
    for k, dy, dx in _shifts(radius):
        out = out + input[:, k : k + 1] * padded[:, :, radius + dy : radius + dy + h, radius + dx : radius + dx + w]
    return out / c


def local_correlation_grad_second_torch(grad: Tensor, first: Tensor, radius: int = RADIUS) -> Tensor:
    """Reference gradient of the correlation w.r.t. `second`: sum_k grad_k * first moved by the window offset k."""
    _, c, h, w = first.shape
    out = torch.zeros(first.shape[0], c, h + 2 * radius, w + 2 * radius, dtype=first.dtype, device=first.device)
    for k, dy, dx in _shifts(radius):
        window = (slice(None), slice(None), slice(radius + dy, radius + dy + h), slice(radius + dx, radius + dx + w))
        out[window] = out[window] + grad[:, k : k + 1] * first
    return out[:, :, radius : radius + h, radius : radius + w] / c


def _save_and_run(ctx, kernel, a: Tensor, b: Tensor, module: ModuleType, radius: int) -> Tensor:
    """Shared forward of the three kernel Functions: keep the inputs for backward, run `kernel` on them."""
    ctx.save_for_backward(a, b)
    ctx.module, ctx.radius = module, radius
    return kernel(a.contiguous(), b.contiguous(), radius)


class _Correlation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, first, second, module, radius):
        return _save_and_run(ctx, module.forward, first, second, module, radius)

    @staticmethod
    def backward(ctx, grad):
        first, second = ctx.saved_tensors
        m, r = ctx.module, ctx.radius
        return _Transpose.apply(grad, second, m, r), _GradSecond.apply(grad, first, m, r), None, None


class _Transpose(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, second, module, radius):
        return _save_and_run(ctx, module.transpose, input, second, module, radius)

    @staticmethod
    def backward(ctx, grad):
        input, second = ctx.saved_tensors
        m, r = ctx.module, ctx.radius
        return _Correlation.apply(grad, second, m, r), _GradSecond.apply(input, grad, m, r), None, None


class _GradSecond(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad, first, module, radius):
        return _save_and_run(ctx, module.grad_second, grad, first, module, radius)

    @staticmethod
    def backward(ctx, out_grad):
        grad, first = ctx.saved_tensors
        m, r = ctx.module, ctx.radius
        return _Correlation.apply(first, out_grad, m, r), _Transpose.apply(grad, out_grad, m, r), None, None


def compiled_local_correlation(device: torch.device) -> ModuleType | None:
    """The compiled module for tensors on `device`, or None for the PyTorch reference."""
    backend = select_backend(device)
    if backend == "torch":
        return None
    forced = forced_backend() is not None
    if backend == "cpp":
        return compiled_or_none("corrlab_local_correlation_cpu", CPU_SOURCES, cuda=False, forced=forced)
    return compiled_or_none("corrlab_local_correlation_cuda", CUDA_SOURCES, cuda=True, forced=forced)


def _check(a: Tensor, b: Tensor, channels_a: int | None, name: str) -> None:
    if a.dim() != 4 or b.dim() != 4 or a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
        raise ValueError(
            f"{name}: expected (B, *, H, W) inputs of equal B, H, W, got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    if channels_a is not None and a.shape[1] != channels_a:
        raise ValueError(f"{name}: expected {channels_a} channels in the first input, got {a.shape[1]}")


def local_correlation(first: Tensor, second: Tensor, radius: int = RADIUS) -> Tensor:
    """(B, C, H, W) x (B, C, H, W) -> (B, (2r+1)^2, H, W), channel k = (dy + r)(2r + 1) + (dx + r), divided by C."""
    _check(first, second, second.shape[1], "local_correlation")
    module = compiled_local_correlation(first.device)
    if module is None:
        return local_correlation_torch(first, second, radius)
    return _Correlation.apply(first, second, module, radius)


def local_correlation_transpose(input: Tensor, second: Tensor, radius: int = RADIUS) -> Tensor:
    """Adjoint of `local_correlation` w.r.t. its first input: (B, (2r+1)^2, H, W) x (B, C, H, W) -> (B, C, H, W)."""
    _check(input, second, (2 * radius + 1) ** 2, "local_correlation_transpose")
    module = compiled_local_correlation(second.device)
    if module is None:
        return local_correlation_transpose_torch(input, second, radius)
    return _Transpose.apply(input, second, module, radius)
