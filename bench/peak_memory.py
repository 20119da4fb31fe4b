"""Peak resident memory of the running process, as every bench reports it."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM: reset at exec, unlike ru_maxrss, which a child started by
    fork + exec inherits from its parent on Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
