"""DeepMatching pyramid ops with torch / cpp (OpenMP) / cuda backends (see src/ops/extension.py).

`pyramid_level` is differentiable (used by the DeepMatching loss); `aggregate_`, `backtrack_`,
`block_max` and `merge_corres_` are the in-place / no-grad building blocks of inference.  All
backends give bit-identical results (same operations in the same order); pyramid_reference.py
holds the readable definitions.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor

from corrlab.ops import pyramid_reference as reference
from corrlab.ops.extension import compiled_or_none, forced_backend, select_backend

SOURCES = {"cpp": ("pyramid_cpu.cpp",), "cuda": ("pyramid_cuda.cu",)}


def backend_module(device: torch.device) -> ModuleType | None:
    """The compiled module for tensors on `device`, or None for the PyTorch reference."""
    backend = select_backend(device)
    if backend == "torch":
        return None
    return compiled_or_none(
        f"corrlab_pyramid_{backend}", SOURCES[backend], cuda=backend == "cuda", forced=forced_backend() is not None
    )


def _contiguous_weights(weights: Tensor | None, like: Tensor) -> Tensor | None:
    return None if weights is None else weights.to(like.dtype).contiguous()


def aggregate_(upper: Tensor, pooled: Tensor, level: int, weights: Tensor | None = None, first_row: int = 0) -> Tensor:
    """upper (B, UH1, UW1, PH, PW) += children of `pooled` (child rows [first_row, ...)), in place."""
    module = backend_module(upper.device)
    if module is None:
        return reference.aggregate_reference(upper, pooled, level, weights, first_row)
    module.aggregate_(upper, pooled.contiguous(), _contiguous_weights(weights, upper), level, first_row)
    return upper


class _Aggregate(torch.autograd.Function):
    """Differentiable aggregation of a full child grid (weights are constants)."""

    @staticmethod
    def forward(ctx, pooled: Tensor, level: int, weights: Tensor | None) -> Tensor:
        b, h1, w1, ph, pw = pooled.shape
        uh1, uw1 = reference.parent_grid(level, h1, w1)
        ctx.level, ctx.weights = level, weights
        upper = pooled.new_zeros(b, uh1, uw1, ph, pw)
        return aggregate_(upper, pooled, level, weights)

    @staticmethod
    def backward(ctx, grad_upper: Tensor):
        module = backend_module(grad_upper.device)
        if module is None:
            grad = reference.aggregate_transpose_reference(grad_upper, ctx.level, ctx.weights)
        else:
            grad = module.aggregate_transpose(
                grad_upper.contiguous(), _contiguous_weights(ctx.weights, grad_upper), ctx.level
            )
        return grad, None, None


def pyramid_level(
    lower: Tensor,
    level: int,
    weights: Tensor | None = None,
    border_norm: float = 0.9,
    eps: float = 1e-8,
    power: float | None = None,
) -> tuple[Tensor, Tensor]:
    """One DeepMatching level: 3x3/2 max-pool of every map of `lower` (B, H1, W1, H2, W2), optional
    rectification clamp(0)^power, weighted aggregation of the 4 children, border normalisation.
    Returns the upper level and the parents' weights (UH1, UW1)."""
    b, h1, w1 = lower.shape[:3]
    pooled = max_pool(lower)
    if power is not None:
        pooled = pooled.clamp(min=0) ** power
    if torch.is_grad_enabled() and pooled.requires_grad:
        upper = _Aggregate.apply(pooled, level, weights)
    else:
        uh1, uw1 = reference.parent_grid(level, h1, w1)
        upper = aggregate_(pooled.new_zeros(b, uh1, uw1, *pooled.shape[-2:]), pooled, level, weights)
    norms, new_weights = reference.border_norms(level, h1, w1, weights, border_norm, eps, lower.device)
    return reference.normalise_borders(upper, norms.to(upper.dtype)), new_weights


def backtrack_(upper: Tensor, lower: Tensor, level: int, first_row: int = 0) -> Tensor:
    """Top-down step, in place on `lower` (child rows [first_row, ...) of the full child grid)."""
    module = backend_module(lower.device)
    if module is None:
        return reference.backtrack_reference(upper, lower, level, first_row)
    module.backtrack_(upper.contiguous(), lower, level, first_row)
    return lower


def max_pool(volume: Tensor) -> Tensor:
    """3x3 stride-2 max-pool (padding 1) of every map of a (..., H2, W2) volume; differentiable
    through the PyTorch reference when a gradient is needed."""
    module = backend_module(volume.device)
    if module is None or (torch.is_grad_enabled() and volume.requires_grad):
        return reference.max_pool(volume)
    if volume.device.type == "cpu":
        return module.max_pool(volume.contiguous(), 0.0)  # power 0: no activation
    return module.max_pool(volume.contiguous())


def max_pool_activate(volume: Tensor, power: float) -> Tensor:
    """`max_pool` then clamp(0)^power (inference); the C++ backend activates each pooled map while it is in
    cache, with torch's own kernels."""
    module = backend_module(volume.device)
    if module is not None and volume.device.type == "cpu":
        return module.max_pool(volume.contiguous(), power)
    return max_pool(volume).clamp_(min=0).pow_(power)


def block_max(volume: Tensor, block: int) -> tuple[Tensor, Tensor]:
    """Max and flat argmax over all maps of (N, H2, W2) and each block x block tile (any numel)."""
    module = backend_module(volume.device)
    if module is None:
        return reference.block_max_reference(volume, block)
    values, indices = module.block_max(volume.contiguous(), block)
    return values, indices


def top_down_level0_(
    volume: Tensor,
    level1: Tensor | None,
    power: float,
    first_row: int,
    block_values: Tensor,
    block_indices: Tensor,
    block: int,
    index_offset: int,
) -> tuple[Tensor, Tensor]:
    """Level 0's top-down pass on a chunk of raw maps `volume` (1, R, W1, H2, W2) holding child rows
    [first_row, ...): activation clamp(0)^power, top-down step from `level1` (None: no upper level), every
    map's best score and pixel (returned), and every block x block tile's best (map, pixel) folded into
    `block_values` / `block_indices` (flat indices offset by `index_offset`; strictly greater wins), in place.
    The C++ backend does all of it per map while the map is in cache; the others compose the ops above."""
    module = backend_module(volume.device)
    if module is not None and volume.device.type == "cpu":
        scores, pixels = module.top_down_level0_(
            volume, level1, power, first_row, block_values, block_indices, block, index_offset
        )
        return scores, pixels
    volume.clamp_(min=0).pow_(power)
    if level1 is not None:
        backtrack_(level1, volume, level=1, first_row=first_row)
    h2, w2 = volume.shape[-2:]
    scores, pixels = volume.view(-1, h2 * w2).max(dim=1)
    values, indices = block_max(volume.view(-1, h2, w2), block)
    better = values > block_values
    block_values.copy_(torch.where(better, values, block_values))
    block_indices.copy_(torch.where(better, indices + index_offset, block_indices))
    return scores, pixels


def merge_corres_(accu: Tensor, corres: Tensor, offset: int, inv_trf: Tensor, max_dist: float, step: int) -> Tensor:
    """Multi-scale merge of (IH, IW, 6) correspondences into the (OH, OW, 6) accumulator, in place."""
    module = backend_module(accu.device)
    inv_trf = inv_trf[:2].to(device=accu.device, dtype=torch.float32).contiguous()
    if module is None:
        return reference.merge_corres_reference(accu, corres, offset, inv_trf, max_dist, step)
    module.merge_corres_(accu, corres.contiguous(), offset, inv_trf, max_dist, step)
    return accu
