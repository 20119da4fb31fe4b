"""The compiled backends shared by the 4-D ops (correlation4d, maxpool4d, conv4d): one CPU and one CUDA extension,
built on first use from src/ops/csrc through src/ops/extension.py."""

from __future__ import annotations

from types import ModuleType

import torch

from corrlab.ops.extension import compiled_or_none, forced_backend, select_backend

CPU_SOURCES = ("ops4d_cpu_bind.cpp", "correlation4d_cpu.cpp", "maxpool4d_cpu.cpp", "conv4d_cpu.cpp")
CUDA_SOURCES = ("ops4d_cuda_bind.cpp", "correlation4d_cuda.cu", "maxpool4d_cuda.cu", "conv4d_cuda.cu")


def compiled_ops4d(device: torch.device) -> ModuleType | None:
    """The compiled module for tensors on `device`, or None for the PyTorch reference (CORRLAB_OPS=torch, or a
    build that failed without being forced)."""
    backend = select_backend(device)
    if backend == "torch":
        return None
    forced = forced_backend() is not None
    if backend == "cpp":
        return compiled_or_none("corrlab_ops4d_cpu", CPU_SOURCES, cuda=False, forced=forced)
    return compiled_or_none("corrlab_ops4d_cuda", CUDA_SOURCES, cuda=True, forced=forced)
