"""Process-wide memory settings for corrlab's commands: glibc's malloc either hands large freed blocks back to
the OS at once (lower peak) or keeps them for reuse (no page faults on every new buffer); and Triton left
unloaded where nothing compiles."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's mallopt parameters (malloc.h)


def mallopt(*settings: tuple[int, int]) -> None:
    """Apply (parameter, value) pairs through glibc's mallopt; a no-op on other C libraries."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):
        for parameter, value in settings:
            libc.mallopt(parameter, value)


def return_freed_memory() -> None:
    """Make glibc give large freed blocks back to the OS at once (a fixed 128 kB mmap threshold): a network's
    freed activations would otherwise stay in the heap under what comes next (PUMP's pyramid, GCM's refinement)."""
    mallopt((M_MMAP_THRESHOLD, 128 * 1024))


def reuse_freed_memory() -> None:
    """Keep freed blocks in the heap for the next allocations (no mmap, no trimming): each new buffer then reuses
    pages already mapped instead of faulting fresh zeroed ones in.  PUMP's CLI at --resize 256 took ~450k page
    faults (~1.1-1.8 CPU-s of system time) the other way, ~100k this way, for ~70-160 MB more peak memory (docs/pump.md)."""
    mallopt((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))


def leave_triton_unloaded() -> None:
    """Make Triton look absent to this process (torch then treats it as not installed).  Evaluation compiles
    nothing (corrlab's kernels are CUDA extensions), yet torchmetrics imports torchvision, whose ops import
    torch._dynamo, which imports Triton: ~75 MB resident and ~0.5 s in every eval.py process (docs/pump.md)."""
    sys.modules.setdefault("triton", None)
