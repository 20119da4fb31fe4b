"""Process-wide memory settings for corrlab's commands."""

from __future__ import annotations

import ctypes
import ctypes.util


def return_freed_memory() -> None:
    """Make glibc give large freed blocks back to the OS at once (a fixed 128 kB mmap threshold): a network's
    freed activations would otherwise stay in the heap under what comes next (PUMP's pyramid, GCM's refinement)."""
    libc = ctypes.util.find_library("c")
    if libc and hasattr(ctypes.CDLL(libc), "mallopt"):
        ctypes.CDLL(libc).mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
