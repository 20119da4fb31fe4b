"""Running a regressor over many matches in micro-batches: the reference's chunks of `regr_batch` matches (whose
BatchNorm statistics, in training, are per chunk), optionally with activation checkpointing so only one chunk's
activations exist at a time while gradients stay identical."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from corrlab.models.patch2pix.local_patches import pair_patches
from corrlab.models.patch2pix.regressor import apply_regression


def chunk_bounds(count: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) chunks of `size`; a last chunk of a single match joins the previous one (as the reference
    does, which also keeps BatchNorm1d from seeing a batch of one)."""
    if count == 0:
        return []
    if count <= size:
        return [(0, count)]
    starts = list(range(0, count, size))
    if count - starts[-1] == 1:
        starts.pop()
    stops = starts[1:] + [count]
    return list(zip(starts, stops))


@contextmanager
def batchnorm_statistics_kept(module: nn.Module) -> Iterator[None]:
    """Restore every BatchNorm running average (and batch counter) on exit: used while a checkpointed chunk is
    recomputed, so the averages are updated once, exactly as without checkpointing."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mean, var, count) in zip(norms, saved):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


def reduced_precision_copy(regressor: nn.Module, dtype: torch.dtype) -> nn.Module:
    """An inference copy of `regressor` in `dtype` with channels-last convolution weights (oneDNN's bfloat16
    kernels are fastest channels-last); the original keeps its float32 weights."""
    return copy.deepcopy(regressor).to(dtype).to(memory_format=torch.channels_last)


def regress_matches(
    regressor: nn.Module,
    levels0: Sequence[Tensor],
    levels1: Sequence[Tensor],
    strides: Sequence[int],
    batch_index: int,
    matches: Tensor,
    psize: int,
    chunk: int,
    use_checkpoint: bool = False,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """Refined matches (N, 4) and inlier probabilities (N,) of one pair, in chunks of `chunk` matches, from the
    patch feature levels of both images (`Patch2PixNet.patch_features`).  `dtype` (default: the features') is the
    regressor's: a reduced one (a `reduced_precision_copy`) gets channels-last patches; the offsets are applied in
    float32 either way."""

    def run(part: Tensor) -> Tensor:
        patches = pair_patches(levels0, levels1, strides, batch_index, part, psize, dtype)
        if dtype is not None and dtype != levels0[0].dtype:
            patches = patches.contiguous(memory_format=torch.channels_last)
        return regressor(patches).float()

    def contexts():
        return nullcontext(), batchnorm_statistics_kept(regressor)

    outputs = []
    for start, stop in chunk_bounds(len(matches), chunk):
        part = matches[start:stop].detach()
        if use_checkpoint and torch.is_grad_enabled():
            outputs.append(checkpoint(run, part, use_reentrant=False, context_fn=contexts))
        else:
            outputs.append(run(part))
    output = torch.cat(outputs) if outputs else matches.new_zeros(0, 5)
    size0, size1 = tuple(levels0[0].shape[-2:]), tuple(levels1[0].shape[-2:])
    return apply_regression(output, matches, psize, size0, size1)
